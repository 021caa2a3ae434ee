"""Storage URIs (s3://BUCKET/PATH?endpoint_override=...) for a search's experiments, and a
local copy of one for reading. pyarrow's filesystems (a Ray dependency) do the transfers;
importing this module needs neither Ray nor pyarrow.

The query string holds the options of pyarrow's S3 filesystem (endpoint_override=HOST:PORT,
scheme=http, region=...): path parts always go before it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .data import DEFAULT_CACHE
from .errors import UserError


def is_uri(path: str) -> bool:
    return "://" in str(path)


def uri_join(uri: str, *parts: str) -> str:
    """`uri`/part/... with the parts inserted before its query string."""
    base, sep, query = uri.partition("?")
    return "/".join([base.rstrip("/"), *parts]) + sep + query


def uri_split(uri: str) -> tuple[str, str]:
    """(parent, name) of the URI of a search directory, the query kept on the parent."""
    base, sep, query = uri.partition("?")
    parent, _, name = base.rstrip("/").rpartition("/")
    return parent + sep + query, name


def local_copy(uri: str, root: Path | None = None) -> Path:
    """A fresh local copy of the directory at `uri`, in `root`/NAME (default
    $TUNE_VQVAE_CACHE/copies): for the analysis, which reads local files. The copy is made
    beside the old one and swapped in whole, so an interrupted copy never passes for a search."""
    import pyarrow.fs

    name = uri_split(uri)[1]
    root = Path(root or Path(DEFAULT_CACHE).expanduser() / "copies")
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        fs, path = pyarrow.fs.FileSystem.from_uri(uri)
        if fs.get_file_info(path).type != pyarrow.fs.FileType.Directory:
            raise UserError(f"{uri.partition('?')[0]} is not a directory there; give the URI of "
                            f"a search directory (--storage-path URI / NAME)")
        pyarrow.fs.copy_files(path, str(staging / name), source_filesystem=fs)
        shutil.rmtree(target, ignore_errors=True)
        (staging / name).rename(target)
    except UserError:
        raise
    except Exception as e:  # pyarrow raises OSError/ArrowInvalid/... per backend
        raise UserError(f"cannot copy {uri.partition('?')[0]} here ({str(e).splitlines()[0]}); "
                        f"check the URI, its endpoint options and credentials") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
