"""The tensor names and shapes of official AV-HuBERT checkpoints, written from the reference code (fairseq /
av_hubert), not from talkface.models.avhubert: the conformance tests load these layouts into the model."""

from __future__ import annotations

from talkface.models.avhubert import ARCHS, FINETUNED_PREFIX


def reference_keys(size: str, finetuned: bool, num_labels: int = 2004, final_dim: int = 256,
                   vocab: int = 1000, decoder_layers: int = 6) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of an official checkpoint's `model` state dict, written from the reference code
    (not from this module), for conformance tests.

    Pretrained: encoder + `mask_emb` [104] + `final_proj` [final_dim*1 label set, D] + `label_embs_concat`
    [num_labels, final_dim] (k-means dictionary size + fairseq's 4 specials; the exact number varies per release and
    is ignored by the loader). Fine-tuned seq2seq: encoder (+ `mask_emb`, no `final_proj`) under `encoder.w2v_model.`,
    plus a fairseq TransformerDecoder (`decoder_layers` layers, `vocab` tokens; ignored by the loader).
    """
    if size not in ARCHS:
        raise ValueError(f"size must be one of {sorted(ARCHS)}, got {size!r}")
    a = ARCHS[size]
    d, f = a.embed_dim, a.ffn_dim
    keys: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int):
        keys.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                     f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()})

    def linear(prefix: str, cout: int, cin: int):
        keys.update({f"{prefix}.weight": (cout, cin), f"{prefix}.bias": (cout,)})

    def norm(prefix: str, c: int):
        keys.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)})

    r = "feature_extractor_video.resnet"
    keys[f"{r}.frontend3D.0.weight"] = (64, 1, 5, 7, 7)
    bn(f"{r}.frontend3D.1", 64)
    keys[f"{r}.frontend3D.2.weight"] = (64,)
    cin = 64
    for li, w in enumerate((64, 128, 256, 512), start=1):
        for bi in range(2):
            p = f"{r}.trunk.layer{li}.{bi}"
            c_in = cin if bi == 0 else w
            keys[f"{p}.conv1.weight"] = (w, c_in, 3, 3)
            bn(f"{p}.bn1", w)
            keys[f"{p}.relu1.weight"] = (w,)
            keys[f"{p}.conv2.weight"] = (w, w, 3, 3)
            bn(f"{p}.bn2", w)
            keys[f"{p}.relu2.weight"] = (w,)
            if bi == 0 and li > 1:
                keys[f"{p}.downsample.0.weight"] = (w, c_in, 1, 1)
                bn(f"{p}.downsample.1", w)
        cin = w
    linear("feature_extractor_video.proj", d, 512)
    linear("feature_extractor_audio.proj", d, a.audio_feat_dim)
    norm("layer_norm", 2 * d)
    linear("post_extract_proj", d, 2 * d)
    keys["encoder.pos_conv.0.bias"] = (d,)
    keys["encoder.pos_conv.0.weight_g"] = (1, 1, a.conv_pos)
    keys["encoder.pos_conv.0.weight_v"] = (d, d // a.conv_pos_groups, a.conv_pos)
    for i in range(a.layers):
        p = f"encoder.layers.{i}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            linear(f"{p}.self_attn.{proj}", d, d)
        norm(f"{p}.self_attn_layer_norm", d)
        linear(f"{p}.fc1", f, d)
        linear(f"{p}.fc2", d, f)
        norm(f"{p}.final_layer_norm", d)
    norm("encoder.layer_norm", d)
    keys["mask_emb"] = (a.audio_feat_dim,)
    if not finetuned:
        linear("final_proj", final_dim, d)
        keys["label_embs_concat"] = (num_labels, final_dim)
        return keys
    out = {FINETUNED_PREFIX + k: v for k, v in keys.items()}
    out["decoder.embed_tokens.weight"] = (vocab, d)
    for i in range(decoder_layers):
        p = f"decoder.layers.{i}"
        for att in ("self_attn", "encoder_attn"):
            for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
                out[f"{p}.{att}.{proj}.weight"], out[f"{p}.{att}.{proj}.bias"] = (d, d), (d,)
            out[f"{p}.{att}_layer_norm.weight"], out[f"{p}.{att}_layer_norm.bias"] = (d,), (d,)
        out[f"{p}.fc1.weight"], out[f"{p}.fc1.bias"] = (f, d), (f,)
        out[f"{p}.fc2.weight"], out[f"{p}.fc2.bias"] = (d, f), (d,)
        out[f"{p}.final_layer_norm.weight"], out[f"{p}.final_layer_norm.bias"] = (d,), (d,)
    out["decoder.layer_norm.weight"], out["decoder.layer_norm.bias"] = (d,), (d,)
    out["decoder.embed_out"] = (vocab, d)
    return out
