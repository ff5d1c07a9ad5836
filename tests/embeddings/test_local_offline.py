"""The local embedder loads its bundled weights without the network and without touching the
process environment (the environment belongs to the edges)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROBE = """
import os, socket
def refuse(self, address):
    raise AssertionError(f"the local embedder tried to connect to {address}")
socket.socket.connect = refuse
import sentence_transformers, transformers  # their own import-time settings (torch's KMP_*) come first
from newsrag.embeddings.local import LocalEmbedder
before = dict(os.environ)
vector = LocalEmbedder().embed_query("harbor storm")
assert dict(os.environ) == before, sorted(set(os.environ) ^ set(before))
print(len(vector))
"""


def test_loading_the_local_model_neither_connects_nor_writes_the_environment() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["384"]
