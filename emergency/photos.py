"""Photos of an incident: checked by content, read for their EXIF location, stored
content-addressed, served without location to those who may not see it.

A photo is accepted when its bytes are a JPEG, PNG or HEIC (whatever the file name or the
declared type say) that decodes completely — a file cut off in transfer is refused — within
the size limit.  Its EXIF GPS position and time are read (Pillow; HEIC through pillow-heif).
Three files are kept under ``<data dir>/photos/<sha[:2]>/<sha256>``: the original as sent
(``.orig``, for roles that may see the reporter's data), a copy with no metadata at all
(``.public.jpg`` or ``.public.png``, EXIF and GPS gone, orientation applied) and a 320 px
thumbnail (``.thumb.jpg``).  Files are written to a temporary name and renamed, so a crash
leaves no half file; the same photo sent twice is stored once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from emergency.errors import InvalidInput, PhotoRejected, PhotoTooLarge

THUMB_PX = 320
_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
#: Pillow refuses to decode images above this many pixels (decompression bombs).
MAX_PIXELS = 64_000_000


def _register_heif() -> bool:
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - a dependency of the project
        return False
    pillow_heif.register_heif_opener()
    return True


HEIF = _register_heif()
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def sniff(data: bytes) -> str | None:
    """The media type the bytes really are (JPEG, PNG, HEIC), or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"heim", b"heis", b"mif1",
                                               b"msf1"):  # fmt: skip
        return "image/heic"
    return None


@dataclass(frozen=True)
class Photo:
    data: bytes
    media_type: str
    sha256: str
    width: int
    height: int
    exif_lon: float | None
    exif_lat: float | None
    taken_at: dt.datetime | None

    @property
    def public_suffix(self) -> str:
        return ".public.png" if self.media_type == "image/png" else ".public.jpg"


def _degrees(value: object, ref: object) -> float | None:
    try:
        d, m, s = (float(x) for x in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60 + s / 3600
    return -deg if str(ref).upper() in ("S", "W") else deg


def _exif(img: Image.Image) -> tuple[float | None, float | None, dt.datetime | None]:
    exif = img.getexif()
    gps = exif.get_ifd(_GPS_IFD)
    lat = _degrees(gps.get(2), gps.get(1)) if gps else None
    lon = _degrees(gps.get(4), gps.get(3)) if gps else None
    if lat is not None and not -90 <= lat <= 90 or lon is not None and not -180 <= lon <= 180:
        lat = lon = None
    taken = None
    raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(306)
    if isinstance(raw, str):
        try:  # EXIF times carry no zone: phones write local time, here Beijing time
            naive = dt.datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
            taken = naive.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
        except ValueError:
            taken = None
    return lon, lat, taken


def inspect(data: bytes, n: int, max_bytes: int) -> Photo:
    """Check photo number ``n`` (1-based, for messages) and read what it says.

    Raises:
        PhotoTooLarge: over ``max_bytes``.
        PhotoRejected: not a JPEG/PNG/HEIC, or it does not decode to the end.
    """
    if len(data) > max_bytes:
        raise PhotoTooLarge(
            f"photo {n} has {len(data) / 1e6:.1f} MB; at most {max_bytes / 1e6:.1f} MB each"
        )
    media_type = sniff(data)
    if media_type is None or (media_type == "image/heic" and not HEIF):
        raise PhotoRejected(f"photo {n} is not a JPEG, PNG or HEIC image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # decodes every pixel: a file cut off in transfer fails here
            width, height = img.size
            lon, lat, taken = _exif(img)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            Image.DecompressionBombError) as exc:  # fmt: skip
        raise PhotoRejected(f"photo {n} is damaged or cut off ({exc})") from None
    return Photo(data, media_type, hashlib.sha256(data).hexdigest(), width, height, lon, lat, taken)


def _public(photo: Photo) -> bytes:
    with Image.open(io.BytesIO(photo.data)) as img:
        upright = ImageOps.exif_transpose(img)
        out = io.BytesIO()
        if photo.media_type == "image/png":
            upright.save(out, "PNG")  # no text chunks, no eXIf
        else:
            upright.convert("RGB").save(out, "JPEG", quality=88)  # no exif= → none written
        return out.getvalue()


def _thumb(photo: Photo) -> bytes:
    with Image.open(io.BytesIO(photo.data)) as img:
        upright = ImageOps.exif_transpose(img).convert("RGB")
        upright.thumbnail((THUMB_PX, THUMB_PX))
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=80)
        return out.getvalue()


def paths(root: Path, sha256: str) -> Path:
    """The stem of a photo's files (``<root>/<sha[:2]>/<sha>``)."""
    return Path(root) / sha256[:2] / sha256


def _write(path: Path, data: bytes) -> bool:
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def store(root: Path, photo: Photo) -> list[Path]:
    """Write the photo's three files (skipping those already there); returns the new ones."""
    stem = paths(root, photo.sha256)
    new = []
    for suffix, make in (
        (".orig", lambda: photo.data),
        (photo.public_suffix, lambda: _public(photo)),
        (".thumb.jpg", lambda: _thumb(photo)),
    ):
        target = stem.with_name(stem.name + suffix)
        if not target.exists() and _write(target, make()):
            new.append(target)
    return new


def read(root: Path, sha256: str, media_type: str, variant: str) -> tuple[bytes, str]:
    """One stored file: ``orig`` (as sent), ``public`` (no metadata) or ``thumb``;
    returns (bytes, media type)."""
    stem = paths(root, sha256)
    if variant == "orig":
        return stem.with_name(stem.name + ".orig").read_bytes(), media_type
    if variant == "public":
        suffix = ".public.png" if media_type == "image/png" else ".public.jpg"
        kind = "image/png" if media_type == "image/png" else "image/jpeg"
        return stem.with_name(stem.name + suffix).read_bytes(), kind
    if variant == "thumb":
        return stem.with_name(stem.name + ".thumb.jpg").read_bytes(), "image/jpeg"
    raise InvalidInput("size must be full or thumb")
