#!/usr/bin/env python3
"""Train a branched (early-exit) ResNet-8-like CNN on Fashion-MNIST with
self-distillation ("Be Your Own Teacher") and export it to ONNX.

Reproduce (from the repo root):
    python -m venv models/.venv
    models/.venv/bin/pip install -r models/requirements.txt
    models/.venv/bin/python models/train_fmnist_ee.py

Outputs (next to this file unless --out-dir is given):
    fmnist_resnet8_ee.onnx   3 outputs, in depth order: exit1, exit2, main (logits)
    fmnist_resnet8_ee.json   metrics: accuracies, params/MACs per segment, timings, versions

Interface contract with the Rust side:
    input  `input`  float32 [N, 28, 28, 1], value = pixel / 255 (no normalization in the graph)
    outputs `exit1`, `exit2`, `main`: float32 [N, 10] logits (no softmax)
Only Conv2D, BatchNormalization (right after a Conv2D), ReLU, Add, MaxPooling2D(2x2/2),
GlobalAveragePooling2D and Dense are used.
"""
import argparse
import gzip
import hashlib
import json
import os
import platform
import random
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package `dataset-fashion-mnist`
NUM_CLASSES = 10
EXITS = ["exit1", "exit2", "main"]  # depth order == ONNX output order
BRANCH_POINTS = {"exit1": "block1_out", "exit2": "block2_out", "main": "block3_out"}


# --------------------------------------------------------------------------- data
def read_idx_gz(path):
    """Minimal IDX reader (big-endian header: magic, dims; payload uint8)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    dtype_code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    if dtype_code != 0x08:
        raise ValueError(f"{path}: expected uint8 IDX data, got type 0x{dtype_code:02x}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def load_fashion_mnist(data_dir):
    def pair(prefix):
        x = read_idx_gz(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx_gz(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
        assert x.shape[0] == y.shape[0] and x.shape[1:] == (28, 28)
        return x, y.astype(np.int64)

    return pair("train"), pair("t10k")


def to_input(x_u8):
    """uint8 [N,28,28] -> float32 [N,28,28,1] in [0,1]: exactly what the Rust side feeds."""
    return (x_u8.astype(np.float32) / 255.0)[..., None]


def augment(x, rng, max_shift):
    """Random horizontal flip + random translation by up to `max_shift` pixels (zero fill)."""
    n = x.shape[0]
    flip = rng.random(n) < 0.5
    x = np.where(flip[:, None, None], x[:, :, ::-1], x)
    if max_shift <= 0:
        return x
    p = max_shift
    padded = np.pad(x, ((0, 0), (p, p), (p, p)))
    dy = rng.integers(0, 2 * p + 1, n)
    dx = rng.integers(0, 2 * p + 1, n)
    out = np.empty_like(x)
    for oy in range(2 * p + 1):
        for ox in range(2 * p + 1):
            sel = (dy == oy) & (dx == ox)
            if sel.any():
                out[sel] = padded[sel, oy:oy + 28, ox:ox + 28]
    return out


# --------------------------------------------------------------------------- model
def build_model(keras):
    L = keras.layers

    def conv_bn(x, filters, k, stride, name, relu=True):
        x = L.Conv2D(filters, k, strides=stride, padding="same", use_bias=False,
                     kernel_initializer="he_normal", name=f"{name}_conv")(x)
        x = L.BatchNormalization(name=f"{name}_bn")(x)
        if relu:
            x = L.ReLU(name=f"{name}_relu")(x)
        return x

    def basic_block(x, filters, stride, name):
        cin = x.shape[-1]
        y = conv_bn(x, filters, 3, stride, f"{name}_a")
        y = conv_bn(y, filters, 3, 1, f"{name}_b", relu=False)
        if stride != 1 or cin != filters:
            s = conv_bn(x, filters, 1, stride, f"{name}_skip", relu=False)
        else:
            s = x
        y = L.Add(name=f"{name}_add")([y, s])
        return L.ReLU(name=f"{name}_out")(y)

    def exit_head(x, filters, k, stride, name):
        h = conv_bn(x, filters, k, stride, f"{name}_head")
        h = L.GlobalAveragePooling2D(name=f"{name}_gap")(h)
        return L.Dense(NUM_CLASSES, name=name)(h)  # logits

    inp = keras.Input(shape=(28, 28, 1), name="input")
    x = conv_bn(inp, 16, 3, 1, "stem")                            # 28x28x16
    x = L.MaxPooling2D(2, strides=2, name="stem_pool")(x)         # 14x14x16
    b1 = basic_block(x, 16, 1, "block1")                          # 14x14x16  -> block1_out
    b2 = basic_block(b1, 32, 2, "block2")                         # 7x7x32    -> block2_out
    b3 = basic_block(b2, 64, 1, "block3")                         # 7x7x64    -> block3_out
    exit1 = exit_head(b1, 32, 3, 2, "exit1")                      # 3x3/2 conv -> 7x7x32 -> GAP -> 10
    exit2 = exit_head(b2, 48, 3, 2, "exit2")                      # 3x3/2 conv -> 4x4x48 -> GAP -> 10
    h = L.GlobalAveragePooling2D(name="main_gap")(b3)
    main = L.Dense(NUM_CLASSES, name="main")(h)
    return keras.Model(inp, [exit1, exit2, main], name="fmnist_resnet8_ee")


def segment_of(layer_name):
    """Segment k = trunk layers between branch point k-1 and k, plus exit head k."""
    if layer_name.startswith(("stem", "block1", "exit1")):
        return "exit1"
    if layer_name.startswith(("block2", "exit2")):
        return "exit2"
    if layer_name.startswith(("block3", "main")):
        return "main"
    if layer_name == "input":
        return None
    raise ValueError(f"layer {layer_name} not assigned to a segment")


def count_cost(model, keras):
    """Params (all weights incl. BN) and MACs (Conv2D + Dense only) per layer and per segment."""
    L = keras.layers
    per_layer, segs = [], {e: {"params": 0, "macs": 0, "head_macs": 0, "head_params": 0} for e in EXITS}
    allowed = (L.InputLayer, L.Conv2D, L.BatchNormalization, L.ReLU, L.Add, L.MaxPooling2D,
               L.GlobalAveragePooling2D, L.Dense)
    for layer in model.layers:
        if not isinstance(layer, allowed) or type(layer) in (L.DepthwiseConv2D, L.SeparableConv2D):
            raise TypeError(f"layer type {type(layer).__name__} not supported by the int8 runtime")
        seg = segment_of(layer.name)
        if seg is None:
            continue
        params = int(sum(np.prod(w.shape) for w in layer.weights))
        macs = 0
        if isinstance(layer, L.Conv2D):
            assert layer.groups == 1 and layer.kernel_size in ((1, 1), (3, 3))
            _, oh, ow, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            macs = int(oh * ow * kh * kw * cin * cout)
        elif isinstance(layer, L.Dense):
            macs = int(layer.input.shape[-1] * layer.units)
        is_head = "_head" in layer.name or layer.name in ("exit1", "exit2", "exit1_gap", "exit2_gap")
        segs[seg]["params"] += params
        segs[seg]["macs"] += macs
        if is_head:
            segs[seg]["head_macs"] += macs
            segs[seg]["head_params"] += params
        per_layer.append({"name": layer.name, "type": type(layer).__name__, "segment": seg,
                          "head": is_head, "params": params, "macs": macs,
                          "output_shape": list(layer.output.shape[1:])})
    total_macs = sum(s["macs"] for s in segs.values())
    trunk_cum, cum_seq = 0, 0
    full_no_early_heads = sum(s["macs"] - s["head_macs"] for s in segs.values()) + segs["main"]["head_macs"]
    for e in EXITS:
        s = segs[e]
        s["trunk_macs"] = s["macs"] - s["head_macs"]
        trunk_cum += s["trunk_macs"]
        cum_seq += s["macs"]
        # cost to obtain this exit's logits alone (trunk up to the branch point + own head)
        s["cumulative_macs"] = trunk_cum + s["head_macs"]
        # cost when exits are evaluated in sequence (earlier heads were also run)
        s["cumulative_macs_sequential"] = cum_seq
        s["cumulative_fraction_of_full"] = s["cumulative_macs"] / full_no_early_heads
    return per_layer, segs, {"total_macs_all_heads": total_macs,
                             "full_model_macs_trunk_plus_main_head": full_no_early_heads,
                             "total_params": int(model.count_params())}


# --------------------------------------------------------------------------- training
def make_train_step(model, optimizer, tf, keras, alpha, temperature):
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    T = float(temperature)

    def distill_kl(teacher_logits, student_logits):
        # KL(softmax(teacher/T) || softmax(student/T)), batch mean, scaled by T^2
        p_t = tf.nn.softmax(teacher_logits / T)
        log_p_t = tf.nn.log_softmax(teacher_logits / T)
        log_p_s = tf.nn.log_softmax(student_logits / T)
        return T * T * tf.reduce_mean(tf.reduce_sum(p_t * (log_p_t - log_p_s), axis=-1))

    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            e1, e2, main = model(x, training=True)
            teacher = tf.stop_gradient(main)
            loss_main = ce(y, main)
            loss_e1 = (1 - alpha) * ce(y, e1) + alpha * distill_kl(teacher, e1)
            loss_e2 = (1 - alpha) * ce(y, e2) + alpha * distill_kl(teacher, e2)
            loss = loss_main + loss_e1 + loss_e2
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, loss_e1, loss_e2, loss_main

    return train_step


def keras_logits(model, x, tf, batch=1000):
    @tf.function(reduce_retracing=True)
    def fwd(b):
        return model(b, training=False)

    outs = [[] for _ in EXITS]
    for i in range(0, len(x), batch):
        for k, o in enumerate(fwd(tf.constant(x[i:i + batch]))):
            outs[k].append(o.numpy())
    return [np.concatenate(o) for o in outs]


def accuracies(logits_list, y):
    return {e: float((lg.argmax(1) == y).mean()) for e, lg in zip(EXITS, logits_list)}


def softmax(z):
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def early_exit_curve(logits_list, y, seq_macs, thresholds):
    """Confidence-threshold early exit: take the first exit whose max softmax >= threshold."""
    probs = [softmax(lg) for lg in logits_list]
    rows = []
    for t in thresholds:
        taken = np.full(len(y), len(EXITS) - 1)
        for k in range(len(EXITS) - 2, -1, -1):
            taken = np.where(probs[k].max(1) >= t, k, taken)
        pred = np.choose(taken, [p.argmax(1) for p in probs])
        macs = np.array(seq_macs)[taken]
        rows.append({"threshold": t, "accuracy": float((pred == y).mean()),
                     "mean_macs": float(macs.mean()),
                     "exit_fractions": [float((taken == k).mean()) for k in range(len(EXITS))]})
    return rows


# --------------------------------------------------------------------------- export
def export_onnx(model, path, tf, opset):
    import onnx
    import tf2onnx

    spec = (tf.TensorSpec((None, 28, 28, 1), tf.float32, name="input"),)
    model_proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    graph = model_proto.graph
    # tf2onnx may name outputs like `exit1/BiasAdd:0`; the contract is exactly exit1, exit2, main.
    assert len(graph.output) == len(EXITS), [o.name for o in graph.output]
    renames = {}
    for out, want in zip(graph.output, EXITS):
        if out.name != want:
            assert out.name.startswith(want), (out.name, want)  # order must be depth order
            renames[out.name] = want
    for node in graph.node:
        node.output[:] = [renames.get(n, n) for n in node.output]
        node.input[:] = [renames.get(n, n) for n in node.input]
    for out in graph.output:
        out.name = renames.get(out.name, out.name)
    # one symbolic batch dimension `N` instead of tf2onnx's unk__NNN names
    for vi in list(graph.input) + list(graph.output):
        dim0 = vi.type.tensor_type.shape.dim[0]
        if not dim0.HasField("dim_value"):
            dim0.dim_param = "N"
    # tf2onnx declares ai.onnx.ml although no node uses it: keep only the domains in use
    used = {n.domain for n in graph.node}
    keep = [o for o in model_proto.opset_import if o.domain in used or o.domain in ("", "ai.onnx")]
    del model_proto.opset_import[:]
    model_proto.opset_import.extend(keep)
    assert [o.name for o in graph.output] == EXITS
    assert [i.name for i in graph.input] == ["input"], [i.name for i in graph.input]
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, path)
    return model_proto, renames


def onnx_summary(model_proto):
    from collections import Counter
    from onnx import numpy_helper

    ops = Counter(n.op_type for n in model_proto.graph.node)

    def shape(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    conv_attrs = []
    for n in model_proto.graph.node:
        if n.op_type == "Conv":
            attrs = {a.name: list(a.ints) if a.ints else (a.s.decode() if a.s else a.i)
                     for a in n.attribute}
            conv_attrs.append({"name": n.name, **attrs})
    return {"op_counts": dict(sorted(ops.items())),
            "inputs": {i.name: shape(i) for i in model_proto.graph.input},
            "outputs": {o.name: shape(o) for o in model_proto.graph.output},
            "opset": [{"domain": o.domain, "version": o.version} for o in model_proto.opset_import],
            "initializer_params": int(sum(numpy_helper.to_array(t).size
                                          for t in model_proto.graph.initializer)),
            "conv_attributes": conv_attrs}


# --------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3, help="peak Adam learning rate")
    ap.add_argument("--warmup-epochs", type=float, default=1.0)
    ap.add_argument("--alpha", type=float, default=0.5, help="distillation weight for early exits")
    ap.add_argument("--temperature", type=float, default=3.0)
    ap.add_argument("--max-shift", type=int, default=2, help="augmentation: max translation (px)")
    ap.add_argument("--val-size", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--train-limit", type=int, default=0, help="debug: use only N training images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--name", default="fmnist_resnet8_ee", help="output basename (.onnx/.json)")
    args = ap.parse_args()

    # ---- seeds & determinism
    random.seed(args.seed)
    np.random.seed(args.seed)
    import tensorflow as tf
    import keras
    keras.utils.set_random_seed(args.seed)  # python, numpy and tf seeds
    tf.config.experimental.enable_op_determinism()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    # ---- data
    (x_all, y_all), (x_test_u8, y_test) = load_fashion_mnist(args.data_dir)
    # Validation = the LAST val_size images of the training file, in file order, so that
    # `sdedge tune --data fashion-mnist --split val` selects exactly the same images.
    idx = np.arange(len(x_all))
    tr_idx, val_idx = idx[:-args.val_size], idx[-args.val_size:]
    if args.train_limit:
        tr_idx = tr_idx[:args.train_limit]
    x_tr_u8, y_tr = x_all[tr_idx], y_all[tr_idx]
    x_val, y_val = to_input(x_all[val_idx]), y_all[val_idx]
    x_test = to_input(x_test_u8)
    val_sha = hashlib.sha256(np.sort(val_idx).astype("<i8").tobytes()).hexdigest()
    print(f"train {len(tr_idx)}  val {len(val_idx)}  test {len(x_test)}", flush=True)

    # ---- model
    model = build_model(keras)
    per_layer, segs, totals = count_cost(model, keras)
    print(f"params {totals['total_params']}  MACs (all heads) {totals['total_macs_all_heads']}", flush=True)
    for e in EXITS:
        s = segs[e]
        print(f"  {e:6s} seg params {s['params']:6d} seg MACs {s['macs']:8d} (head {s['head_macs']:7d})"
              f"  cumulative {s['cumulative_macs']:8d} = {100 * s['cumulative_fraction_of_full']:.1f}% of full",
              flush=True)

    steps_per_epoch = int(np.ceil(len(tr_idx) / args.batch_size))
    total_steps = steps_per_epoch * args.epochs
    warmup = int(args.warmup_epochs * steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=args.lr / 10 if warmup else args.lr, decay_steps=max(total_steps - warmup, 1),
        warmup_target=args.lr if warmup else None, warmup_steps=warmup, alpha=0.0)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    train_step = make_train_step(model, optimizer, tf, keras, args.alpha, args.temperature)

    # ---- training
    rng = np.random.default_rng(args.seed + 1)
    history = []
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        te = time.perf_counter()
        order = rng.permutation(len(tr_idx))
        x_ep = to_input(augment(x_tr_u8[order], rng, args.max_shift))
        y_ep = y_tr[order]
        sums = np.zeros(4)
        for s in range(steps_per_epoch):
            sl = slice(s * args.batch_size, (s + 1) * args.batch_size)
            out = train_step(tf.constant(x_ep[sl]), tf.constant(y_ep[sl]))
            sums += [float(v) for v in out]
        train_time = time.perf_counter() - te
        val_acc = accuracies(keras_logits(model, x_val, tf), y_val)
        rec = {"epoch": epoch + 1, "loss": sums[0] / steps_per_epoch, "loss_exit1": sums[1] / steps_per_epoch,
               "loss_exit2": sums[2] / steps_per_epoch, "loss_main": sums[3] / steps_per_epoch,
               "val_acc": val_acc, "epoch_train_seconds": train_time,
               "epoch_total_seconds": time.perf_counter() - te}
        history.append(rec)
        print(f"epoch {epoch + 1:3d}/{args.epochs}  loss {rec['loss']:.4f}  val "
              + " ".join(f"{e}={100 * a:.2f}" for e, a in val_acc.items())
              + f"  ({train_time:.1f}s train, {rec['epoch_total_seconds']:.1f}s total)", flush=True)
    train_wall = time.perf_counter() - t0
    print(f"training wall time {train_wall:.1f}s", flush=True)

    # ---- evaluation (Keras)
    val_logits = keras_logits(model, x_val, tf)
    test_logits_keras = keras_logits(model, x_test, tf)
    val_acc = accuracies(val_logits, y_val)
    test_acc_keras = accuracies(test_logits_keras, y_test)

    # ---- export + ONNX verification
    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, f"{args.name}.onnx")
    model_proto, renames = export_onnx(model, onnx_path, tf, args.opset)
    import onnxruntime as ort
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    assert out_names == EXITS, out_names
    onnx_test = [[] for _ in EXITS]
    for i in range(0, len(x_test), 1000):
        for k, o in enumerate(sess.run(EXITS, {"input": x_test[i:i + 1000]})):
            onnx_test[k].append(o)
    onnx_test = [np.concatenate(o) for o in onnx_test]
    single = sess.run(EXITS, {"input": x_test[:1]})  # batch 1 works too (dynamic batch)
    max_abs = {e: float(np.abs(a - b).max()) for e, a, b in zip(EXITS, onnx_test, test_logits_keras)}
    max_abs_b1 = {e: float(np.abs(a[0] - b[0]).max()) for e, a, b in zip(EXITS, single, test_logits_keras)}
    test_acc_onnx = accuracies(onnx_test, y_test)
    agree = {e: float((a.argmax(1) == b.argmax(1)).mean()) for e, a, b in zip(EXITS, onnx_test, test_logits_keras)}
    print("ONNX outputs:", [(o.name, o.shape) for o in sess.get_outputs()], flush=True)
    print("max |onnx - keras| on test logits:", max_abs, flush=True)
    print("float TEST accuracy (onnxruntime):", {e: round(100 * a, 2) for e, a in test_acc_onnx.items()}, flush=True)
    print("VAL accuracy (keras):", {e: round(100 * a, 2) for e, a in val_acc.items()}, flush=True)

    seq_macs = [segs[e]["cumulative_macs_sequential"] for e in EXITS]
    thresholds = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]
    summary = onnx_summary(model_proto)
    print("ONNX op counts:", summary["op_counts"], flush=True)

    import onnx
    import onnxruntime
    import tf2onnx
    import google.protobuf
    report = {
        "model": args.name,
        "onnx_file": os.path.basename(onnx_path),
        "onnx_sha256": hashlib.sha256(open(onnx_path, "rb").read()).hexdigest(),
        "interface": {"input": {"name": "input", "shape": ["N", 28, 28, 1], "dtype": "float32",
                                "value": "pixel / 255 (uint8 IDX pixel divided by 255, no other normalization)"},
                      "outputs": [{"name": e, "shape": ["N", NUM_CLASSES], "kind": "logits",
                                   "branch_point": BRANCH_POINTS[e]} for e in EXITS],
                      "onnx_summary": summary, "onnx_output_renames": renames},
        "float_test_accuracy_onnxruntime": test_acc_onnx,
        "float_test_accuracy_keras": test_acc_keras,
        "val_accuracy_keras": val_acc,
        "onnx_vs_keras_max_abs_diff_test_logits": max_abs,
        "onnx_vs_keras_max_abs_diff_batch1": max_abs_b1,
        "onnx_vs_keras_argmax_agreement_test": agree,
        "segments": {e: {**segs[e], "branch_point": BRANCH_POINTS[e]} for e in EXITS},
        "totals": totals,
        "segment_definition": "segment k = trunk layers after branch point k-1 up to branch point k "
                              "(stem+block1 | block2 | block3) plus exit head k; MACs count Conv2D and "
                              "Dense only; cumulative_macs = trunk up to the branch point + own head; "
                              "cumulative_macs_sequential = also counting the earlier exits' heads",
        "per_layer": per_layer,
        "early_exit_confidence_curve": {
            "note": "first exit whose max softmax >= threshold; MACs = cumulative_macs_sequential",
            "val": early_exit_curve(val_logits, y_val, seq_macs, thresholds),
            "test": early_exit_curve(onnx_test, y_test, seq_macs, thresholds)},
        "training": {
            "epochs": args.epochs, "batch_size": args.batch_size, "steps_per_epoch": steps_per_epoch,
            "optimizer": "Adam (keras defaults beta1=0.9, beta2=0.999, eps=1e-7), no weight decay",
            "lr_schedule": f"linear warmup {args.lr / 10:g}->{args.lr:g} over {args.warmup_epochs:g} epoch(s), "
                           f"then cosine decay to 0 (per step)",
            "peak_lr": args.lr,
            "loss": "CE(main) + sum_{k in exit1,exit2} [(1-alpha) CE(exit_k) + alpha T^2 "
                    "KL(softmax(stop_grad(main)/T) || softmax(exit_k/T))]",
            "alpha": args.alpha, "temperature": args.temperature,
            "augmentation": f"random horizontal flip p=0.5, random translation up to +-{args.max_shift} px "
                            "(zero fill), numpy, re-drawn each epoch",
            "seed": args.seed, "op_determinism": True, "intra_op_threads": args.threads,
            "train_wall_seconds": train_wall,
            "history": history},
        "data": {
            "source": f"{args.data_dir} (Debian package dataset-fashion-mnist, gzipped IDX)",
            "train_images": int(len(tr_idx)), "val_images": int(len(val_idx)), "test_images": int(len(x_test)),
            "split": f"val = the last {args.val_size} images of the training file (file order), "
                     f"train = the first {60000 - args.val_size}"
                     + (f"[:{args.train_limit}]" if args.train_limit else "")
                     + " (indices into the official 60k training set); the 10k test set is used only "
                       "for the final reported accuracy",
            "val_indices_sorted_sha256_int64le": val_sha,
            "val_indices_first10": [int(i) for i in val_idx[:10]]},
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpu_count": os.cpu_count(),
                        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                                     "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
                                     "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
                                     "protobuf": google.protobuf.__version__}},
        "command": " ".join([os.path.relpath(sys.executable, os.getcwd())] + sys.argv),
    }
    json_path = os.path.join(args.out_dir, f"{args.name}.json")
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {onnx_path} and {json_path}", flush=True)


if __name__ == "__main__":
    main()
