#!/usr/bin/env bash
# Exports a trained model through both Hugging Face doors and answers the same questions with
# transformers 5 (this project's) and transformers 4.57 (a separate venv that borrows torch and
# timm from the project's), greedy; prints whether the answers agree.
#   benchmarks/export_in_older_transformers.sh MODEL_DIR [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_DIR=$1
WORK=${2:-/tmp/allava-older-transformers}
PY=.venv/bin/python
OLD_PY=$WORK/venv/bin/python
mkdir -p "$WORK"
if [ ! -x "$OLD_PY" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q "transformers==4.57.1"
  # Only transformers (and its tokenizers, hub client) come from the old venv; torch, timm and
  # PIL from the project's, listed after it on sys.path.
  $PY -c 'import site; print(site.getsitepackages()[0])' \
    > "$($OLD_PY -c 'import site; print(site.getsitepackages()[0])')/zz_project.pth"
fi
$PY -m allava.cli.main export "$MODEL_DIR" --format hf --out "$WORK/llava" --overwrite
$PY -m allava.cli.main export "$MODEL_DIR" --format hf --hf-class remote-code --out "$WORK/remote" --overwrite
$PY - "$WORK" <<'PYTHON'
import io, json, sys, tarfile
from pathlib import Path
from PIL import Image
work = Path(sys.argv[1]); (work / "images").mkdir(exist_ok=True)
shard = tarfile.open("data/toy/instruct/shard-000000.tar")
names = [m for m in shard.getmembers() if m.name.endswith(".png")][:6]
items = []
for number, member in enumerate(names):
    path = work / "images" / f"{number}.png"
    Image.open(io.BytesIO(shard.extractfile(member).read())).save(path)
    items += [{"image": str(path), "question": q}
              for q in ("Describe the image briefly.", "What color is the circle?")]
(work / "items.json").write_text(json.dumps(items))
PYTHON
HELPER=tests/helpers/hf_answers.py
for door in llava remote; do
  flag=$([ $door = remote ] && echo --remote-code || true)
  $PY $HELPER "$WORK/$door" "$WORK/items.json" $flag > "$WORK/$door.new.json"
  $OLD_PY $HELPER "$WORK/$door" "$WORK/items.json" $flag > "$WORK/$door.old.json"
done
$PY - "$WORK" <<'PYTHON'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
for door in ("llava", "remote"):
    new, old = (json.loads((work / f"{door}.{v}.json").read_text()) for v in ("new", "old"))
    same = sum(a == b for a, b in zip(new, old))
    print(f"{door:>6}: transformers 4.57 gives the same greedy answer as 5.x on {same} of {len(new)}")
print("first answers:", new[:3])
PYTHON
