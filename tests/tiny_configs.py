"""Shared tiny settings for tests: small enough to run a forward/backward in milliseconds."""

# A randomly initialised wav2vec 2.0 of the same architecture family as wav2vec2-base
# (7 conv layers, total stride 320 -> 2 tokens per 25 fps frame at 16 kHz).
TINY_W2V = {
    "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
    "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
}
