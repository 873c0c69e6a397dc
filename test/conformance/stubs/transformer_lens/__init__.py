"""Stand-in for the two names EAP-IG's graph.py imports from transformer_lens (not packaged in
Debian). graph.py only uses them in isinstance checks of `Graph.from_model`; `from_json` passes
a dict, so neither class is ever instantiated here."""


class HookedTransformer:  # noqa: D101 - marker class for isinstance
    pass


class HookedTransformerConfig:  # noqa: D101 - marker class for isinstance
    pass
