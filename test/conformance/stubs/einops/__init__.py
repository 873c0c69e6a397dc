"""einops.einsum (einops is not packaged in Debian) as torch.einsum: einops names axes with
words separated by spaces ("backward, forward backward -> forward"); torch wants one letter per
axis, so each word becomes a letter. Only plain named axes are supported (no "...", no
parentheses), which is all EAP-IG's graph.py uses."""
import string

import torch


def einsum(*args):
    *tensors, pattern = args
    letters = {}

    def axis(word):
        if word not in letters:
            letters[word] = string.ascii_letters[len(letters)]
        return letters[word]

    inputs, output = pattern.split("->")
    spec = ",".join("".join(axis(w) for w in part.split()) for part in inputs.split(","))
    spec += "->" + "".join(axis(w) for w in output.split())
    return torch.einsum(spec, *tensors)
