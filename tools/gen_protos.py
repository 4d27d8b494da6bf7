"""Generate the Python stubs for every contract in protos/.

The stubs land beside the hand-written code, under services/chatconnect/<area>/v1/, so the
contract of `chatconnect.users.v1.UsersService` is imported as
`chatconnect.users.v1.users_service_pb2`. They are build output: never edit or commit them
(.gitignore keeps them out). Typed `.pyi` files come from mypy-protobuf so that
`mypy --strict` checks every use of a message.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "services"


def _plugin(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit(f"{name} not found next to {sys.executable}: run `make install` first")
    return found


def main() -> int:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    stale = list((OUT / "chatconnect").glob("*/v1"))
    for directory in stale:
        shutil.rmtree(directory)
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--mypy_out={OUT}",
        f"--mypy_grpc_out={OUT}",
        *sources,
    ]
    print(f"generating Python stubs for {len(sources)} proto files into {OUT}/chatconnect/*/v1")
    code = protoc.main(args)
    if code != 0:
        print("protoc failed; fix the .proto files above and run `make gen` again", file=sys.stderr)
        return int(code)
    for directory in (OUT / "chatconnect").glob("*/v1"):
        (directory / "__init__.py").touch()
        (directory.parent / "__init__.py").touch(exist_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
