"""A tiny server that answers every request with one fixed generation, as the emulator would.

Used by the client CPU benchmark: every client under test talks to the same server, in
another process pinned to the other core, so only client-side work is measured. The body
and headers are a real emulator answer to ``GET /v1/images/{id}`` (a succeeded 2k image),
with a fresh request id and rate-limit window per response, as the API sends them.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from aiohttp import web

from ._serve import serve_forever

GENERATION_ID = "img_01M8KSNS65136D1NG28K6YYSCA"
BODY = (
    b'{"id":"img_01M8KSNS65136D1NG28K6YYSCA","object":"inference","status":"succeeded",'
    b'"media_type":"image","prompt":"a lighthouse","negative_prompt":null,'
    b'"created_at":"2026-11-29T14:00:40Z","completed_at":"2026-11-29T14:00:54Z",'
    b'"output_urls":["http://127.0.0.1:8899/v1/images/img_01M8KSNS65136D1NG28K6YYSCA/output/0'
    b'?token=1796047254.Ozz__9t7psWCNMuYcmH6Cvwy"],"output_video_url":null,'
    b'"reference_image_urls":null,"error_message":null,"duration_ms":14336,'
    b'"cost":{"amount":1,"currency":"credit","breakdown":{"base":1,"enhance":0}},'
    b'"width":2048,"height":2048,"image_count":1,"size_preset":"2k_1_1",'
    b'"inference_type":"t2i","cfg_rescale":0.0,"denoise_strength":0.6,"seed":2105429891,'
    b'"video_duration":null,"video_resolution":null,"video_ratio":null,'
    b'"video_camera_fixed":null,"character_id":null,"loras":null,'
    b'"aurous_version":"2026-05-15","creation_request_id":"req_01M8KSNS64GCD9N9TC0DY3YQXS"}'
)
_counter = itertools.count()


async def handle(request: web.Request) -> web.Response:
    if request.body_exists:
        await request.read()
    headers = {
        "Aurous-Request-Id": f"req_01M8KSNV9MRYCF3067J{next(_counter):07d}",
        "X-RateLimit-Limit": "1200",
        "X-RateLimit-Remaining": "1199",
        "X-RateLimit-Reset": str(int(time.time()) + 60),
        "Aurous-Version": "2026-05-15",
    }
    return web.Response(body=BODY, content_type="application/json", headers=headers)


if __name__ == "__main__":
    asyncio.run(serve_forever(handle))
