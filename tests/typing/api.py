"""The public API as users write it; ``mypy --strict`` checks this file, nothing runs it."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio

from aurous_async import (
    API_VERSION,
    DEFAULT_POLLING,
    APIStatusError,
    AsyncAurous,
    AsyncPager,
    Balance,
    BucketState,
    Character,
    CharacterAttributes,
    CharacterAttributesDict,
    CostLimitExceededError,
    DeletedFile,
    Estimate,
    EventLoopMismatchError,
    File,
    Generation,
    GenerationFailedError,
    GenerationStatus,
    InvalidParameterError,
    Limits,
    Lora,
    LoraWeight,
    LoraWeightDict,
    OutcomeUnknownError,
    Page,
    PollPolicy,
    Pricing,
    RateLimitError,
    RetryPolicy,
    Team,
    Timeouts,
    UploadTicket,
    UsageBucket,
    UsageEvent,
    VideoLora,
    WaitTimeoutError,
    WebhookEndpoint,
    WebhookTestFire,
    __version__,
)
from aurous_async.webhooks import Event, WebhookReceiver, WebhookResponse


async def images(client: AsyncAurous) -> None:
    est: Estimate = await client.images.estimate(prompt="a cat", size="2k_1_1")
    amount: float = est.amount
    img: Generation = await client.images.create(
        prompt="a cat",
        lora_id="golden-hour-photography",
        count=2,
        idempotency_key="my-key",
        timeout=30.0,
        api_version=API_VERSION,
    )
    stacked: Generation = await client.images.create(
        prompt="a cat", loras=[LoraWeight("lora_a", 0.5), LoraWeight("b")], width=1024, height=1536
    )
    img = await client.images.get(img.id)
    done: bool = img.is_terminal and img.status is GenerationStatus.SUCCEEDED
    pager: AsyncPager[Generation] = client.images.list(limit=50)
    async for g in pager:
        gid: str = g.id
    async for page in client.images.list().pages():
        first: Page[Generation] = page
    some: list[Generation] = await client.images.list().collect(max_items=10)
    cancelled: Generation = await client.images.cancel(img.id)
    data: bytes = await client.images.download(img, index=0)
    written: anyio.Path = await client.images.save(img, Path("out.png"))
    del amount, stacked, done, gid, first, some, cancelled, data, written


async def videos(client: AsyncAurous) -> None:
    vid: Generation = await client.videos.create(
        video_lora_id="seedance-1-pro", prompt="waves", resolution="720p", duration=5
    )
    est: Estimate = await client.videos.estimate(video_lora_id="seedance-1-pro", duration=4)
    vid = await client.videos.get(vid.id)
    head: bytes = await client.videos.download(vid, start=0, end=1023)
    await client.videos.save(vid, "clip.mp4")
    await client.videos.cancel(vid.id)
    del est, head


async def catalogue(client: AsyncAurous) -> None:
    loras: list[Lora] = [lora async for lora in client.loras.list()]
    one: Lora = await client.loras.get("golden-hour-photography")
    vl: VideoLora = await client.video_loras.get("seedance-1-pro")
    pricing: Pricing = await client.pricing.get(api_version="2026-05-15")
    balance: Balance = await client.balance.get()
    team: Team = await client.team.get()
    del loras, one, vl, pricing, balance, team


async def lists_openai_style(client: AsyncAurous) -> None:
    page: Page[Generation] = await client.images.list(limit=20)
    items: Sequence[Generation] = page.data
    cursor: str | None = page.next_cursor
    while page.has_next_page():
        page = await page.next_page()
    async for later in page:
        lid: str = later.id
        del lid
    chars: Page[Character] = await client.characters.list(limit=10)
    ledger: Page[UsageEvent] = await client.usage.events.list(type="charge")
    since = datetime.now(timezone.utc) - timedelta(days=1)
    usage: Page[UsageBucket] = await client.usage.list(start_time=since)
    styles: Page[Lora] = await client.loras.list()
    more: bool = chars.has_more or ledger.has_next_page() or usage.has_more
    del items, cursor, styles, more


async def files_and_characters(client: AsyncAurous) -> None:
    f: File = await client.files.create(Path("ref.png"), purpose="reference", metadata={"a": "b"})
    f = await client.files.get(f.id)
    gone: DeletedFile = await client.files.delete(f.id)
    ticket: UploadTicket = await client.characters.upload("face.jpg")
    ticket2: UploadTicket = await client.characters.uploads.init(
        filename="side.png", content_type="image/png"
    )
    await client.characters.uploads.put(ticket2, b"...")
    pose = (await client.characters.uploads.classify(ticket.upload_id)).pose
    char: Character = await client.characters.create(
        name="Aurora", upload_ids=[ticket.upload_id, ticket2.upload_id]
    )
    synth: Character = await client.characters.create(
        name="Nova", generate=True, attributes=CharacterAttributes(gender="female", age=28)
    )
    char = await client.characters.update(char.id, name="Aurora II", attributes={"age": 29})
    char = await client.characters.refs.regenerate(char.id, pose="front")
    char = await client.characters.resynthesize(char.id, force_all=True)
    char = await client.characters.save(char.id)
    async for c in client.characters.list(limit=10):
        del c
    await client.characters.delete(char.id)
    del gone, pose, synth


async def webhooks_and_usage(client: AsyncAurous) -> None:
    ep: WebhookEndpoint = await client.webhook_endpoints.create(
        url="https://example.com/hook", events=["image.completed"]
    )
    secret: str | None = ep.secret
    ep = await client.webhook_endpoints.rotate_secret(ep.id)
    fired: WebhookTestFire = await client.webhook_endpoints.test(
        ep.id, event_type="image.completed"
    )
    await client.webhook_endpoints.get(ep.id)
    await client.webhook_endpoints.delete(ep.id)
    since = datetime.now(timezone.utc) - timedelta(days=7)
    buckets: list[UsageBucket] = await client.usage.list(
        start_time=since, bucket_width="1d", group_by=["status"]
    ).collect()
    events: list[UsageEvent] = await client.usage.events.list(type="charge").collect(100)
    del secret, fired, buckets, events


async def networks_and_event_loops() -> None:
    corporate = ssl.create_default_context(cafile="corp-ca.pem")
    async with AsyncAurous(
        "al_live_x", proxy="http://user:pw@proxy.internal:3128", ssl=corporate
    ) as client:
        try:
            await client.team.get()
        except EventLoopMismatchError as err:
            also: RuntimeError = err
            del also
    local = AsyncAurous("al_live_x", base_url="https://127.0.0.1:8443", ssl=False, trust_env=False)
    await local.close()


async def lifecycle_and_errors() -> None:
    async with AsyncAurous(
        "al_live_x",
        base_url="http://127.0.0.1:8000",
        timeout=60.0,
        retry=RetryPolicy(max_attempts=3),
        limits=Limits(max_connections=10),
        timeouts=Timeouts(connect=5.0),
    ) as client:
        limits: dict[str, BucketState] = dict(client.rate_limits)
        try:
            await client.images.create(prompt="x")
        except OutcomeUnknownError as err:
            key: str | None = err.idempotency_key
            del key
        except RateLimitError as err:
            wait: float | None = err.retry_after
            del wait
        except APIStatusError as err:
            status: int = err.status
            code: str | None = err.code
            rid: str | None = err.request_id
            del status, code, rid
        except InvalidParameterError as err:
            param: str | None = err.param
            del param
        del limits
    client2 = AsyncAurous()
    await client2.close()
    version: str = __version__
    del version


async def waits(client: AsyncAurous, receiver: WebhookReceiver) -> None:
    img: Generation = await client.images.create(prompt="a cat")
    async for snap in client.wait_for(img, timeout=300.0, on_progress=True):
        current: GenerationStatus = snap.status
        del current
    async for snap in client.wait_for(img.id):
        del snap
    try:
        final: Generation = await client.wait(
            img, timeout=300.0, raise_on_failure=True, cancel_on_timeout=True
        )
        del final
    except WaitTimeoutError as err:
        last: Generation | None = err.last
        gid: str | None = err.generation_id
        as_timeout: TimeoutError = err
        del last, gid, as_timeout
    except GenerationFailedError as err:
        failed: Generation = err.generation
        del failed
    jobs: list[Generation | str] = [img, "img_x"]
    async for done in client.as_completed(jobs, timeout=600.0):
        terminal: bool = done.is_terminal
        del terminal
    try:
        stream = client.images.create_many([{"prompt": "a"}, {"prompt": "b"}], max_cost=10.0)
        async for accepted in client.as_completed(stream):
            del accepted
    except CostLimitExceededError as err:
        estimated: float = err.estimated
        limit: float = err.max_cost
        del estimated, limit
    async with client.videos.create_many([{"video_lora_id": "v"}], max_concurrency=4) as batch:
        async for made in batch:
            del made
    for left in batch.unreported:
        key: str = left.idempotency_key
        accepted_late: Generation | None = left.generation
        retry: Generation = await client.images.create(**left.request)
        del key, accepted_late, retry
    picture: Generation = await client.images.generate(prompt="a", wait_timeout=60.0)
    clip: Generation = await client.videos.generate(
        video_lora_id="v", duration=2, raise_on_failure=True
    )
    del picture, clip
    client.attach_webhooks(receiver)
    client.detach_webhooks()
    custom = AsyncAurous("al_live_x", polling=PollPolicy(max_interval=5.0, budget_share=0.5))
    policy: PollPolicy = DEFAULT_POLLING
    await custom.close()
    del policy


async def models_as_json(client: AsyncAurous, event: Event) -> None:
    img: Generation = await client.images.get("img_1")
    data: dict[str, object] = img.to_dict()
    text: str = img.to_json()
    compact: str = img.to_json(indent=None)
    back: Generation = Generation.from_dict(data)
    relayed: Event = Event.from_dict(event.to_dict())
    endpoint_data: dict[str, object] = (await client.webhook_endpoints.get("we_1")).to_dict()
    del text, compact, back, relayed, endpoint_data


async def dict_parameters(client: AsyncAurous) -> None:
    entry: LoraWeightDict = {"lora": "golden-hour-photography", "weight": 0.8}
    light: LoraWeightDict = {"lora": "watercolor-dreams"}
    made: Generation = await client.images.create(
        prompt="a cat", loras=[entry, light, LoraWeight("b", 0.5)]
    )
    inline: Generation = await client.images.create(
        prompt="a cat", loras=[{"lora": "a", "weight": 1.0}]
    )
    priced: Estimate = await client.images.estimate(prompt="a cat", loras=[{"lora": "a"}])
    looks: CharacterAttributesDict = {"gender": "female", "age": 28}
    character: Character = await client.characters.create(
        name="Aurora", generate=True, attributes=looks
    )
    character = await client.characters.update(character.id, attributes={"hair_color": "red"})
    del made, inline, priced, character


async def framework_neutral_webhooks(
    client: AsyncAurous, receiver: WebhookReceiver, body: bytes, headers: dict[str, str]
) -> None:
    answer: WebhookResponse = await receiver.handle(body, headers)
    status: int = answer.status
    payload: bytes = answer.body
    content_type: str = answer.headers["Content-Type"]
    event: Event | None = answer.event
    if event is not None:
        client.deliver_event(event)
    del status, payload, content_type
