#!/usr/bin/env python3
"""Key/shape list of an SDXL-size checkpoint in the oracle's keys_*.json format.

The oracle gives keys_tinyxl.json (SDXL topology at toy sizes). This writes the same topology at
SDXL's real sizes (channels 320/640/1280, transformer depths 0/2/10, text encoders 768x12 CLIP-L
and 1280x32 OpenCLIP bigG) for `gouache-cli random-model` and `gouache-cli bench`. It first
rebuilds keys_tinyxl.json from the tiny sizes and checks it is identical, so the real-size list
has the very structure the reference was made from.

    make-keys-sdxl.py keys_tinyxl.json keys_sdxl.json
"""
import json
import sys

TINY = dict(channels=[64, 128, 256], depths=[0, 2, 3], te1=(64, 2, 256), te2=(128, 3, 512),
            time_id_dim=32, vae=[32, 64, 128, 128], config="tinyxl")
REAL = dict(channels=[320, 640, 1280], depths=[0, 2, 10], te1=(768, 12, 3072),
            te2=(1280, 32, 5120), time_id_dim=256, vae=[128, 256, 512, 512], config="sdxl")


def keys(cfg, tiny_keys):
    out = []

    def add(name, shape):
        out.append([name, list(shape), "F16"])

    u = "model.diffusion_model."
    ch, depths = cfg["channels"], cfg["depths"]
    mc, td = ch[0], 4 * ch[0]
    te1_w, te1_layers, te1_mlp = cfg["te1"]
    te2_w, te2_layers, te2_mlp = cfg["te2"]
    context = te1_w + te2_w

    def pair(name, shape):
        add(name + ".weight", shape)
        add(name + ".bias", [shape[0]])

    def norm(name, c):
        add(name + ".weight", [c])
        add(name + ".bias", [c])

    def resblock(base, c_in, c_out):
        norm(base + ".in_layers.0", c_in)
        pair(base + ".in_layers.2", [c_out, c_in, 3, 3])
        pair(base + ".emb_layers.1", [c_out, td])
        norm(base + ".out_layers.0", c_out)
        pair(base + ".out_layers.3", [c_out, c_out, 3, 3])
        if c_in != c_out:
            pair(base + ".skip_connection", [c_out, c_in, 1, 1])

    def transformer(base, c, depth):
        norm(base + ".norm", c)
        pair(base + ".proj_in", [c, c])
        pair(base + ".proj_out", [c, c])
        for i in range(depth):
            b = "%s.transformer_blocks.%d" % (base, i)
            for n in ("norm1", "norm2", "norm3"):
                norm(b + "." + n, c)
            for a, kv in (("attn1", c), ("attn2", context)):
                add(b + ".%s.to_q.weight" % a, [c, c])
                add(b + ".%s.to_k.weight" % a, [c, kv])
                add(b + ".%s.to_v.weight" % a, [c, kv])
                pair(b + ".%s.to_out.0" % a, [c, c])
            pair(b + ".ff.net.0.proj", [8 * c, c])
            pair(b + ".ff.net.2", [c, 4 * c])

    pair(u + "time_embed.0", [td, mc])
    pair(u + "time_embed.2", [td, td])
    pair(u + "label_emb.0.0", [td, te2_w + 6 * cfg["time_id_dim"]])
    pair(u + "label_emb.0.2", [td, td])
    pair(u + "input_blocks.0.0", [mc, 4, 3, 3])
    block, c_prev, skips = 1, mc, [mc]
    for level, c in enumerate(ch):
        for _ in range(2):
            resblock(u + "input_blocks.%d.0" % block, c_prev, c)
            if depths[level]:
                transformer(u + "input_blocks.%d.1" % block, c, depths[level])
            c_prev = c
            skips.append(c)
            block += 1
        if level < len(ch) - 1:
            pair(u + "input_blocks.%d.0.op" % block, [c, c, 3, 3])
            skips.append(c)
            block += 1
    resblock(u + "middle_block.0", c_prev, c_prev)
    transformer(u + "middle_block.1", c_prev, depths[-1])
    resblock(u + "middle_block.2", c_prev, c_prev)
    block = 0
    for level in reversed(range(len(ch))):
        c = ch[level]
        for i in range(3):
            resblock(u + "output_blocks.%d.0" % block, c_prev + skips.pop(), c)
            c_prev = c
            if depths[level]:
                transformer(u + "output_blocks.%d.1" % block, c, depths[level])
            if level > 0 and i == 2:
                pair(u + "output_blocks.%d.%d.conv" % (block, 2 if depths[level] else 1), [c, c, 3, 3])
            block += 1
    norm(u + "out.0", mc)
    pair(u + "out.2", [4, mc, 3, 3])

    t = "conditioner.embedders.0.transformer.text_model."
    add(t + "embeddings.position_embedding.weight", [77, te1_w])
    add(t + "embeddings.token_embedding.weight", [49408, te1_w])
    for i in range(te1_layers):
        b = t + "encoder.layers.%d." % i
        norm(b + "layer_norm1", te1_w)
        norm(b + "layer_norm2", te1_w)
        pair(b + "mlp.fc1", [te1_mlp, te1_w])
        pair(b + "mlp.fc2", [te1_w, te1_mlp])
        for p in ("k_proj", "out_proj", "q_proj", "v_proj"):
            pair(b + "self_attn." + p, [te1_w, te1_w])
    norm(t + "final_layer_norm", te1_w)
    g = "conditioner.embedders.1.model."
    norm(g + "ln_final", te2_w)
    add(g + "logit_scale", [])
    add(g + "positional_embedding", [77, te2_w])
    add(g + "text_projection", [te2_w, te2_w])
    add(g + "token_embedding.weight", [49408, te2_w])
    for i in range(te2_layers):
        b = g + "transformer.resblocks.%d." % i
        add(b + "attn.in_proj_bias", [3 * te2_w])
        add(b + "attn.in_proj_weight", [3 * te2_w, te2_w])
        pair(b + "attn.out_proj", [te2_w, te2_w])
        norm(b + "ln_1", te2_w)
        norm(b + "ln_2", te2_w)
        pair(b + "mlp.c_fc", [te2_mlp, te2_w])
        pair(b + "mlp.c_proj", [te2_w, te2_mlp])

    # The VAE is SD's, at the sizes the tiny one scales: copy its names with scaled shapes.
    scale = {a: b for a, b in zip(TINY["vae"], cfg["vae"])}
    for name, shape, dtype in tiny_keys:
        if name.startswith("first_stage_model."):
            out.append([name, [scale.get(d, d) for d in shape], dtype])
    return sorted(out)


def main():
    tiny = json.load(open(sys.argv[1]))
    rebuilt = keys(TINY, tiny["tensors"])
    if rebuilt != sorted(tiny["tensors"]):
        missing = {n for n, _, _ in tiny["tensors"]} ^ {n for n, _, _ in rebuilt}
        sys.exit("the tiny rebuild differs from %s: %s" % (sys.argv[1], sorted(missing)[:10]))
    real = {"tensors": keys(REAL, tiny["tensors"]),
            "metadata": {"sdrand.config": REAL["config"], "sdrand.version": "1"}}
    with open(sys.argv[2], "w") as f:
        json.dump(real, f, indent=0)
    params = sum(1 if not s else __import__("math").prod(s) for _, s, _ in real["tensors"])
    print("%d tensors, %.2f G parameters" % (len(real["tensors"]), params / 1e9))


if __name__ == "__main__":
    main()
