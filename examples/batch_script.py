"""Generate an image for every prompt of a file, under a cost cap, saving each as it ends.

    AUROUS_API_KEY=al_live_... python batch_script.py prompts.txt out/ --max-cost 50

The batch is priced first and refused, with nothing created, if it would cost more than
``--max-cost`` credits. Creates are paced by the client's rate governor (never refused
for going too fast), and each image is saved the moment it completes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import anyio

from aurous_async import AsyncAurous, CostLimitExceededError, Generation


async def generate_all(
    client: AsyncAurous, prompts: list[str], out_dir: Path, *, max_cost: float
) -> list[Generation]:
    """Create one image per prompt and save the outputs; returns every finished job."""
    await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
    requests = [{"prompt": prompt, "size": "2k_1_1"} for prompt in prompts]
    finished: list[Generation] = []
    async with client.images.create_many(requests, max_cost=max_cost) as batch:
        async for image in client.as_completed(batch):
            finished.append(image)
            if image.status != "succeeded":
                print(f"{image.id}: {image.status} {image.error_message or ''}", file=sys.stderr)
                continue
            for index in range(len(image.output_urls)):
                await client.images.save(image, out_dir / f"{image.id}_{index}.png", index=index)
    print(f"estimated {batch.estimated_cost} credits, charged {batch.actual_cost:g}")
    return finished


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", type=Path, help="a text file, one prompt per line")
    parser.add_argument("out", type=Path, help="where the images go")
    parser.add_argument("--max-cost", type=float, required=True, help="credits at most")
    args = parser.parse_args(argv)
    lines = args.prompts.read_text(encoding="utf-8").splitlines()
    prompts = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    try:
        async with AsyncAurous() as client:  # AUROUS_API_KEY, AUROUS_BASE_URL
            finished = await generate_all(client, prompts, args.out, max_cost=args.max_cost)
    except CostLimitExceededError as exc:
        print(f"refused: {exc.estimated:g} credits > --max-cost {exc.max_cost:g}", file=sys.stderr)
        return 2
    return 0 if all(image.status == "succeeded" for image in finished) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
