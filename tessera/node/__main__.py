"""``python -m tessera.node CONFIG_OR_DIR``: run a node (what ``tessera node start`` does)."""

import sys
from pathlib import Path

from tessera.node.server import serve
from tessera.node.setup import CONFIG_FILE

if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m tessera.node NODE_DIR|node.toml", file=sys.stderr)
        sys.exit(2)
    target = Path(sys.argv[1])
    serve(target / CONFIG_FILE if target.is_dir() else target)
