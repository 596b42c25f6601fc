#!/usr/bin/env python3
"""Prepares the appliance's plate detector from the shipped YOLOv8 model, at set-up time.

The shipped model (platedet 0.0.2) is a segmentation export for 640x640 inputs that decodes its
boxes inside the graph. On a trailer we want less work per frame:

  1. cut the graph at the three raw head outputs, [1, 64 + classes, H/s, W/s] for strides 8, 16,
     32 (distance bins and class logits); the appliance decodes them itself (engine/detect.rs),
     so the mask branch and the in-graph decoding, which ONNX Runtime would compute anyway, go;
  2. give it a landscape input (default 384x640, height x width), which fits a 16:9 camera frame
     with almost no padding: the network is convolutional up to the cut, so no constant changes;
  3. optionally quantise it statically to INT8 (QDQ, per channel, 7-bit weights so that CPUs
     without VNNI do not saturate), calibrated on pictures from a folder, or on frames this
     script draws when no folder is given.

Nothing derived from the model is committed to the repository: set-up runs this on the fetched,
sha256-verified file. Usage:
  prepare-detector.py SRC.onnx OUT.onnx [--height 384 --width 640] [--int8 [--calibration DIR]]
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import helper, shape_inference

HEADS = ["/model.22/Concat_1_output_0", "/model.22/Concat_2_output_0", "/model.22/Concat_3_output_0"]
NAMES = ["stride8", "stride16", "stride32"]


def cut(model: onnx.ModelProto, height: int, width: int) -> onnx.ModelProto:
    g = model.graph
    produced = {o for n in g.node for o in n.output}
    missing = [h for h in HEADS if h not in produced]
    if missing:
        sys.exit(f"prepare-detector: not a YOLOv8 graph this script knows (no {missing[0]})")
    # Rename the head tensors to plain output names.
    rename = dict(zip(HEADS, NAMES))
    for n in g.node:
        n.output[:] = [rename.get(o, o) for o in n.output]
        n.input[:] = [rename.get(i, i) for i in n.input]
    # Keep only the nodes the heads depend on.
    by_output = {o: n for n in g.node for o in n.output}
    needed, stack = set(), list(NAMES)
    while stack:
        t = stack.pop()
        n = by_output.get(t)
        if n is None or id(n) in needed:
            continue
        needed.add(id(n))
        stack.extend(n.input)
    kept = [n for n in g.node if id(n) in needed]
    del g.node[:]
    g.node.extend(kept)
    used = {i for n in kept for i in n.input}
    inits = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.value_info[:]
    elem = g.input[0].type.tensor_type.elem_type
    del g.output[:]
    for name in NAMES:
        g.output.append(helper.make_tensor_value_info(name, elem, None))
    dims = g.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = height, width
    model = shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def to_float32(model: onnx.ModelProto) -> onnx.ModelProto:
    """Quantisation calibrates in float32; the shipped model is float16 throughout."""
    from onnx import numpy_helper

    g = model.graph
    for init in g.initializer:
        if init.data_type == onnx.TensorProto.FLOAT16:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
    for n in g.node:
        if n.op_type == "Cast":
            for a in n.attribute:
                if a.name == "to" and a.i == onnx.TensorProto.FLOAT16:
                    a.i = onnx.TensorProto.FLOAT
        for a in n.attribute:
            if a.name == "value" and a.t.data_type == onnx.TensorProto.FLOAT16:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float32)))
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16:
            v.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    del g.value_info[:]
    return shape_inference.infer_shapes(model, strict_mode=True)


def letterbox(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(width / w, height / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    ys = np.clip(((np.arange(nh) + 0.5) / s - 0.5).round().astype(int), 0, h - 1)
    xs = np.clip(((np.arange(nw) + 0.5) / s - 0.5).round().astype(int), 0, w - 1)
    out = np.full((height, width, 3), 114, np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    out[top : top + nh, left : left + nw] = rgb[ys][:, xs]
    return out.transpose(2, 0, 1)[None].astype(np.float32) / 255.0


def drawn_frames(height: int, width: int, count: int):
    """Road-scene-like frames: sky and road gradients, noise, car-sized blocks, light plates with
    dark strokes. They only set activation ranges; real pictures are better when an agency has them."""
    rng = np.random.default_rng(13)
    for _ in range(count):
        h, w = 720, 1280
        img = np.zeros((h, w, 3), np.float32)
        horizon = rng.integers(200, 400)
        img[:horizon] = np.linspace(rng.uniform(120, 230), rng.uniform(60, 180), horizon)[:, None, None]
        img[horizon:] = np.linspace(rng.uniform(40, 90), rng.uniform(90, 140), h - horizon)[:, None, None]
        img += rng.normal(0, 12, img.shape)
        for _ in range(rng.integers(1, 4)):
            cw, ch = rng.integers(250, 600), rng.integers(150, 350)
            x, y = rng.integers(0, w - cw), rng.integers(horizon - 50, h - ch)
            img[y : y + ch, x : x + cw] = rng.uniform(0, 255, 3)
            pw, ph = cw // 4, cw // 8
            px, py = x + (cw - pw) // 2, y + ch - ph - rng.integers(5, 30)
            img[py : py + ph, px : px + pw] = rng.uniform(200, 255)
            for k in range(rng.integers(5, 8)):
                sx = px + 4 + k * (pw - 8) // 7
                img[py + ph // 5 : py + ph - ph // 5, sx : sx + max(2, pw // 30)] = rng.uniform(0, 60)
        yield np.clip(img, 0, 255).astype(np.uint8)


def folder_frames(folder: str, count: int):
    from PIL import Image  # only when calibrating on a folder

    names = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    for name in names[:count]:
        yield np.asarray(Image.open(os.path.join(folder, name)).convert("RGB"))


def quantise(src: str, out: str, height: int, width: int, calibration: str | None, count: int):
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    frames = folder_frames(calibration, count) if calibration else drawn_frames(height, width, count)
    batches = [letterbox(f, height, width) for f in frames]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"images": b}

    # The last convolution of each branch (distance bins, class logit) stays in float: small
    # errors there move boxes and scores directly.
    keep_float = [n.name for n in onnx.load(src).graph.node if n.op_type == "Conv" and n.name.endswith(".2/Conv")]
    # Weights in 7 bits (reduce_range): on x86 CPUs without VNNI (AVX2 only), ONNX Runtime
    # multiplies u8 activations by s8 weights with an instruction whose 16-bit sums saturate.
    # Measured on us-dev on such a CPU (AMD EPYC, AVX2): 8-bit weights found 105 of 111 plates,
    # 7-bit ones 108, as many as the float model, at the same speed. (Not measured on a VNNI
    # CPU, where 8 bits do not saturate; per-channel weights lose little to the seventh bit.)
    quantize_static(src, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_exclude=keep_float)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--int8", action="store_true")
    p.add_argument("--calibration", help="folder of JPEG/PNG pictures to calibrate on")
    p.add_argument("--frames", type=int, default=48)
    a = p.parse_args()
    if a.height % 32 or a.width % 32:
        sys.exit("prepare-detector: height and width must be multiples of 32")
    model = cut(onnx.load(a.src), a.height, a.width)
    tmp = a.out + ".tmp"
    if a.int8:
        onnx.save(to_float32(model), tmp + ".f32")
        quantise(tmp + ".f32", tmp, a.height, a.width, a.calibration, a.frames)
        os.remove(tmp + ".f32")
    else:
        onnx.save(model, tmp)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
