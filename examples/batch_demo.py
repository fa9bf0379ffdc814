"""A batch of image generations against the embedded emulator, end to end.

Starts the emulator on a free loopback port (jobs run 60x faster than real), estimates
and creates one generation per prompt in ``examples/prompts.txt`` concurrently, polls each
to a terminal state, saves every output under ``out/`` and writes ``out/manifest.json``.

    python examples/batch_demo.py [--out DIR] [--time-scale N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import anyio

from aurous_async import TERMINAL_STATUSES, AsyncAurous, Generation
from aurous_async.testing import run_emulator

PROMPTS = Path(__file__).with_name("prompts.txt")


async def run_one(client: AsyncAurous, prompt: str, seed: int, out: Path) -> dict[str, object]:
    estimate = await client.images.estimate(prompt=prompt, size="2k_1_1")
    job: Generation = await client.images.create(prompt=prompt, size="2k_1_1", seed=seed)
    while job.status not in TERMINAL_STATUSES:
        await anyio.sleep(0.05)
        job = await client.images.get(job.id)
    saved = []
    for index, _ in enumerate(job.output_urls or ()):
        path = out / f"{job.id}_{index}.png"
        await client.images.save(job, path, index=index)
        saved.append(str(path))
    return {
        "id": job.id,
        "prompt": prompt,
        "status": str(job.status),
        "estimated_credits": estimate.amount,
        "files": saved,
    }


async def main(prompts: list[str], out: Path, time_scale: float) -> int:
    async with (
        run_emulator(time_scale=time_scale) as emulator,
        AsyncAurous(emulator.api_key, base_url=emulator.base_url) as client,
    ):
        print(f"emulator at {emulator.base_url}; {len(prompts)} prompts")
        results = await asyncio.gather(
            *(run_one(client, prompt, seed, out) for seed, prompt in enumerate(prompts))
        )
        balance = await client.balance.get()
    for row in results:
        print(f"{row['id']}  {row['status']:<10} {row['prompt']}")
    await anyio.Path(out, "manifest.json").write_text(json.dumps(results, indent=2) + "\n")
    succeeded = sum(1 for row in results if row["status"] == "succeeded")
    print(f"{succeeded}/{len(results)} succeeded; balance now {balance.credits} credits")
    print(f"outputs and manifest in {out}/")
    return 0 if succeeded == len(results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--time-scale", type=float, default=60.0)
    args = parser.parse_args()
    lines = [p.strip() for p in PROMPTS.read_text().splitlines() if p.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    raise SystemExit(asyncio.run(main(lines, args.out, args.time_scale)))
