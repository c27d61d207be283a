"""Small copies of the released datasets' layouts (ALLaVA-4V, LLaVA-1.5, ShareGPT4V), with the
kinds of bad input the converter must account for. Images are generated here; ids, paths and
field sets follow the released files."""
from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

from PIL import Image


def _jpeg(size=(48, 32), color=(200, 30, 30), mode="RGB", exif_orientation=None) -> bytes:
    image = Image.new(mode, size, color if mode == "RGB" else color[0] if mode == "L" else
                      (0, 200, 200, 0))
    buffer = io.BytesIO()
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(buffer, "JPEG", exif=exif)
    else:
        image.save(buffer, "JPEG")
    return buffer.getvalue()


def _png(size=(40, 40), mode="RGB") -> bytes:
    image = Image.new("RGB", size, (30, 160, 60))
    if mode == "P":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
    elif mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (30, 30), (10, 10, 200)).convert("P").save(buffer, "GIF")
    return buffer.getvalue()


def _bomb_png(side=20000) -> bytes:
    """A valid 1x1 PNG whose header claims side x side pixels: PIL refuses to open it."""
    data = bytearray(_png((1, 1)))
    ihdr = 8 + 8  # signature, then length + b"IHDR"
    data[ihdr:ihdr + 8] = struct.pack(">II", side, side)
    crc = zlib.crc32(bytes(data[12:ihdr + 13]))
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def _turns(*pairs: str) -> list[dict]:
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": text} for i, text in enumerate(pairs)]


VFLAN_NAME = "images_191task_1k/VQA-E+image_question+COCO train2014 000000393243.jpg"

def _image_record(rid, image: str, *turns: str, **extra) -> dict:
    return {"id": rid, "image": image, "conversations": _turns(*turns), **extra}


def _text_record(rid: str, *turns: str, key: str = "id", **extra) -> dict:
    return {key: rid, **extra, "conversations": _turns(*turns)}


DESCRIBE = "<image>\nDescribe the image."
ANALYZE = "<image>\nAnalyze the image."


# file -> records; ids, paths and extra fields as in the releases. Counted below as EXPECTED_*.
def dataset_files() -> dict[str, list[dict]]:
    laion = "allava_laion/images"
    vflan = "allava_vflan/images"
    return {
        "ALLaVA-Caption-LAION-4V.json": [
            _image_record("allava_laion_cap_100277305", f"{laion}/100277305.jpeg",
                          "<image>\nPlease depict the image in words.", "A red box.",
                          original_caption="red box", url="http://example.invalid/1.jpg"),
            _image_record("allava_laion_cap_100277306", f"{laion}/100277306.jpeg", DESCRIBE,
                          "A rotated photo.", original_caption="",
                          url="http://example.invalid/2.jpg"),
            _image_record("allava_laion_cap_missing", f"{laion}/404.jpeg", DESCRIBE, "Gone."),
            _image_record("allava_laion_cap_truncated", f"{laion}/truncated.jpeg", DESCRIBE, "Cut."),
            _image_record("allava_laion_cap_100277305", f"{laion}/100277305.jpeg",
                          "<image>\nDescribe it again.", "Duplicate id."),
        ],
        "ALLaVA-Instruct-VFLAN-4V.json": [
            _image_record("allava_vflan_inst_0", f"{vflan}/{VFLAN_NAME}", "<image>\nWhat is shown?",
                          "A cat."),
            _image_record("allava_vflan_inst_1", f"{vflan}/gray.png", "What colour?\n<image>", "Gray."),
            _image_record("allava_vflan_inst_tiny", f"{vflan}/tiny.png", "<image>\nAnything?",
                          "Too small."),
            _image_record("allava_vflan_inst_bomb", f"{vflan}/bomb.png", "<image>\nAnything?",
                          "Huge."),
        ],
        "Evol-Instruct-GPT4-Turbo-143K.json": [
            _text_record("evol_0", "What is 2 + 2?", "4.", key="idx"),
            _text_record("evol_1", "Name a colour.", "", key="idx"),  # empty turn
            _text_record("evol_2", "Hi", "Hello", "Bye", "Goodbye", key="idx"),
        ],
        "blip_laion_cc_sbu_558k.json": [  # LLaVA-Pretrain: the tag after the text
            _image_record("004539375", "00453/004539375.jpg",
                          "Give a brief description of the image.\n<image>", "A dog."),
            _image_record("004539376", "00453/004539376.jpg", "Describe the image concisely.",
                          "No tag."),  # mismatch
        ],
        "llava_v1_5_mix665k.json": [
            _image_record("000000033471", "coco/train2017/000000033471.jpg",
                          "<image>\nWhat are the colors of the bus?", "White and red.",
                          "What feature can be seen on the back?", "An ad."),
            _text_record("i6IyJda_0", "Write a haiku.", "Leaves fall.", model=""),
            _image_record(19, "ocr_vqa/images/19.gif", "<image>\nWho wrote this book?", "Someone."),
            _text_record("text_with_tag", "<image>\nWhat is this?", "No image."),
            {"id": "bad_role", "conversations": [{"from": "robot", "value": "beep"},
                                                 {"from": "gpt", "value": "boop"}]},
            {"id": "two_humans", "conversations": [{"from": "human", "value": "a"},
                                                   {"from": "human", "value": "b"}]},
            _text_record("no_answer", "Anyone?"),
        ],
        "share-captioner_coco_lcs_sam_1246k_1107.jsonl": [
            _image_record("sa_545504", "sam/images/sa_545504.jpg",
                          "<image>\nWhat do you see happening in this image?", "A park."),
            _image_record("sa_545505", "sam/images/sa_545505.png", ANALYZE, "A palette image."),
            _image_record("sa_545506", "sam/images/sa_545506.png", ANALYZE, "A transparent image."),
            _image_record("sa_545507", "sam/images/sa_545507.jpg", ANALYZE, "A CMYK image."),
        ],
    }


EXPECTED_WRITTEN = 14
EXPECTED_REJECTS = {
    "missing_image": 1, "unreadable_image": 1, "duplicate_id": 1, "image_too_small": 1,
    "decompression_bomb": 1, "empty_turn": 1, "image_tag_mismatch": 2, "unknown_role": 1,
    "turns_not_alternating": 1, "no_assistant_turn": 1, "malformed_record": 1,
}
EXPECTED_RECORDS_IN = EXPECTED_WRITTEN + sum(EXPECTED_REJECTS.values())


def write_datasets(root: Path) -> tuple[list[Path], Path]:
    """Writes the annotation files under root/json and the images under root/images; returns
    the annotation paths (in a fixed order) and the image root."""
    images = root / "images"
    files = {
        "allava_laion/images/100277305.jpeg": _jpeg(),
        "allava_laion/images/100277306.jpeg": _jpeg((60, 20), exif_orientation=6),
        "allava_laion/images/truncated.jpeg": _jpeg((64, 64))[:300],
        f"allava_vflan/images/{VFLAN_NAME}": _jpeg((32, 32), (20, 20, 200)),
        "allava_vflan/images/gray.png": _png(mode="L"),
        "allava_vflan/images/tiny.png": _png((4, 4)),
        "allava_vflan/images/bomb.png": _bomb_png(),
        "00453/004539375.jpg": _jpeg(),
        "00453/004539376.jpg": _jpeg(),
        "coco/train2017/000000033471.jpg": _jpeg(),
        "ocr_vqa/images/19.gif": _gif(),
        "sam/images/sa_545504.jpg": _jpeg(),
        "sam/images/sa_545505.png": _png(mode="P"),
        "sam/images/sa_545506.png": _png(mode="RGBA"),
        "sam/images/sa_545507.jpg": _jpeg(mode="CMYK", color=(0, 0, 0)),
    }
    for name, data in files.items():
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        (images / name).write_bytes(data)
    paths = []
    for name, records in dataset_files().items():
        path = root / "json" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".jsonl"):
            lines = [json.dumps(r) for r in records]
            lines.insert(2, '{"id": "broken", "conversations": [')  # one unparsable line
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            path.write_text(json.dumps(records), encoding="utf-8")
        paths.append(path)
    return paths, images
