"""第9章: torch.nn.MultiheadAttention の重みを、本書の多頭注意に写す。

nn.MultiheadAttention は W_Q・W_K・W_V を縦に積んだ 1 つの行列
in_proj_weight (3 d_model, d_model) に持ち、本書の MultiHeadAttention は
q_proj・k_proj・v_proj の 3 つの nn.Linear に分けて持つ。
中身は同じなので、行列を 3 つに切って名前を付け替えれば写せる。
"""

from torch import nn

from easy_transformer.attention import MultiHeadAttention


def load_from_torch(
    ours: MultiHeadAttention, ref: nn.MultiheadAttention
) -> None:
    """ref の重みとバイアスを ours に読み込む（ours を書き換える）。"""
    weights = ref.in_proj_weight.detach().chunk(3)
    biases = ref.in_proj_bias.detach().chunk(3)
    state = {}
    for name, w, b in zip(("q", "k", "v"), weights, biases, strict=True):
        state[f"{name}_proj.weight"] = w
        state[f"{name}_proj.bias"] = b
    state["out_proj.weight"] = ref.out_proj.weight.detach()
    state["out_proj.bias"] = ref.out_proj.bias.detach()
    ours.load_state_dict(state)
