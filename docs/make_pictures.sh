#!/usr/bin/env bash
# Regenerate every picture in README.md with the project's own commands and the bundled model.
#   bash docs/make_pictures.sh            (from the repository root, after `make demo` or `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
sa=".venv/bin/selfattention"
out=docs/images
dog="A dog ate the food because it was hungry."
mkdir -p "$out"
$sa heads "$dog" --from it --to dog --top 5 > "$out/heads-it-dog.txt"
read -r layer head < <(awk '$1 ~ /^[0-9]+$/ {print $1, $2; exit}' "$out/heads-it-dog.txt")  # the head that links it to dog most
$sa attention "$dog" --view lines --token it --layer "$layer" --head "$head" --out "$out/lines-it.png"
$sa attention "$dog" --view heatmap --out "$out/heatmap.png"
$sa attention "$dog" --view grid --out "$out/grid.png"
$sa attention "$dog" --view mean --out "$out/mean.png"
$sa attention "$dog" --view rollout --out "$out/rollout.png"
$sa attention "$dog" --view alignment --out "$out/alignment.png"
$sa context "I love Apple phones" "I love apple juice" --word apple --out "$out/context-apple.png"
$sa context "He sat by the river bank." "He went to the money bank." --word bank --out "$out/context-bank.png"
.venv/bin/python docs/screenshot_page.py "$out"  # the web page at 1280 and 390 px (needs chromium)
