"""The configuration schema, its loader and the example it documents.

The pydantic models below are the one source of truth: defaults, validation,
`starsort config check` and `config/example.yaml` (rendered by
`render_example()`) all come from them, so the docs cannot drift from the code.
Every problem in a config file is reported on a line of its own that names the
dotted key, the way borgmatic and organize report theirs.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import paths


class ConfigError(Exception):
    """A config file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class Section(BaseModel):
    # Unknown keys are typos far more often than intent: refuse them.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class AnalysisConfig(Section):
    min_preview_px: int = Field(
        1000, ge=64,
        description="Use a raw's embedded preview when its long side is at least this many pixels; "
        "otherwise demosaic the raw at half size.")
    max_px: int = Field(
        1600, ge=320, le=8000,
        description="Long side, in pixels, of the image the analysis works on. JPEGs are decoded "
        "at reduced size (libjpeg DCT scaling) to about this size.")
    max_image_pixels: int = Field(
        250_000_000, ge=1_000_000,
        description="Refuse images larger than this many pixels (decompression-bomb guard).")
    timeout_seconds: float = Field(
        120.0, gt=0,
        description="A photo whose analysis takes longer than this is failed and its worker restarted.")


class FacesConfig(Section):
    min_size: int = Field(40, ge=12, description="Smallest face, in analysis-image pixels, that MTCNN looks for.")
    min_confidence: float = Field(0.90, ge=0.0, le=1.0,
                                  description="Keep detections whose probability is at least this.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where MTCNN runs: cpu, cuda, or auto (cuda when available).")


class BlurConfig(Section):
    threshold: float = Field(
        10.0, gt=0,
        description="A face whose score is below this is blurry. The score is the lower of two normalised "
        "measures of the inner face: the variance of its Laplacian (defocus) and the energy of its second "
        "derivative in its weakest direction (motion blur, camera shake); both must clear it.")
    frame_threshold: float = Field(
        10.0, gt=0,
        description="For photos with no face: the whole frame is blurry below this normalised score.")
    min_face_px: int = Field(
        72, ge=0,
        description="Faces narrower than this many pixels, in the best pixels there were to judge them by, "
        "are too small to judge: they are recorded and reported as skipped, but do not count for the stars. "
        "0 counts every face.")


class StarsConfig(Section):
    mode: Literal["margin", "share"] = Field(
        "margin",
        description="margin: with no blurry face, the margin of the weakest face over blur.threshold gives "
        "5, 4 or 3 stars (`margins`), and the share of blurry faces gives the lower bands (`mapping`); "
        "share: the share of blurry faces alone (`mapping`), the rule of earlier versions.")
    mapping: list[tuple[float, int]] = Field(
        default_factory=lambda: [(0.0, 5), (25.0, 4), (50.0, 3), (75.0, 2), (100.0, 1)],
        description="Pairs of [max percent of blurry faces, stars], checked in order: the first "
        "pair whose percent is at least the photo's share of blurry faces gives its stars.")
    margins: list[tuple[float, int]] = Field(
        default_factory=lambda: [(100.0, 5), (20.0, 4), (0.0, 3)],
        description="margin mode: pairs of [min percent by which the weakest counted face clears "
        "blur.threshold, stars], checked in order; the first the photo reaches gives its stars.")
    soft_percent: float = Field(
        1.2, ge=0, le=100,
        description="margin mode: a blurry face scoring at least this percent of blur.threshold is soft, "
        "not lost; a photo whose blurry faces are all soft gets at least 2 stars.")
    background_face_ratio: float = Field(
        0.5, ge=0, le=1,
        description="A face narrower than this share of the photo's largest face is in the background: it is "
        "recorded and reported as skipped, but does not count for the stars, so a soft passer-by behind a "
        "sharp subject costs nothing. 0 counts every face.")
    frame_sharp_stars: int = Field(4, ge=1, le=5,
                                   description="Stars for a photo with no face whose frame is sharp.")
    frame_blurry_stars: int = Field(1, ge=1, le=5,
                                    description="Stars for a photo with no face whose frame is blurry.")

    @field_validator("mapping")
    @classmethod
    def _mapping_is_ordered(cls, v: list[tuple[float, int]]) -> list[tuple[float, int]]:
        if not v:
            raise ValueError("needs at least one [percent, stars] pair")
        pcts = [p for p, _ in v]
        if pcts != sorted(pcts):
            raise ValueError("percents must increase")
        if pcts[-1] < 100:
            raise ValueError("the last percent must be 100 so every photo gets stars")
        for p, s in v:
            if not 0 <= p <= 100:
                raise ValueError(f"percent {p} is outside 0..100")
            if not 1 <= s <= 5:
                raise ValueError(f"stars {s} is outside 1..5")
        return v

    @field_validator("margins")
    @classmethod
    def _margins_are_ordered(cls, v: list[tuple[float, int]]) -> list[tuple[float, int]]:
        if not v:
            raise ValueError("needs at least one [percent, stars] pair")
        pcts = [p for p, _ in v]
        if pcts != sorted(pcts, reverse=True):
            raise ValueError("percents must decrease")
        if pcts[-1] != 0:
            raise ValueError("the last percent must be 0 so every face that clears the threshold gets stars")
        for p, s in v:
            if p < 0:
                raise ValueError(f"percent {p} is negative")
            if not 1 <= s <= 5:
                raise ValueError(f"stars {s} is outside 1..5")
        return v


class ClusterConfig(Section):
    max_distance: int = Field(
        11, ge=0, le=24,
        description="Largest pHash Hamming distance (of 64 bits) at which an earlier photo is a candidate "
        "for the same burst; each candidate is then confirmed by comparing the two frames (max_change). "
        "Handheld burst frames differ by 0-14 bits, most by 7-10; up to 11 costs the lookup no more than 8.")
    window_seconds: float = Field(
        120.0, ge=0,
        description="Largest difference in capture time for two photos to share a cluster.")
    max_change: float = Field(
        0.33, gt=0,
        description="Largest change between two frames of one burst, once aligned and their exposure "
        "matched: the worst of 12 blocks' residual energy relative to its contrast. Frames of a handheld "
        "burst measure up to about 0.2; the same spot with the person moved, 0.5 and more.")
    burst_gap_seconds: float = Field(
        1.0, ge=0,
        description="Photos from one camera model whose capture times (with EXIF sub-seconds) are at most "
        "this far apart are one burst, whatever they show; 0 turns this off.")


class XmpConfig(Section):
    enabled: bool = Field(True, description="Write the rating into an XMP sidecar next to each filed photo.")
    sidecar_naming: Literal["adobe", "ext", "both"] = Field(
        "adobe",
        description="Sidecar name: adobe = IMG.xmp (Lightroom, Capture One, Bridge); "
        "ext = IMG.ARW.xmp (darktable, digiKam); both = write the two.")
    pick_label: str | None = Field(
        "Green",
        description="xmp:Label for the sharpest frame of each burst of two or more photos (Lightroom's colour labels are Red, "
        "Yellow, Green, Blue, Purple); null writes no label. The label moves when a sharper frame arrives.")
    rate_rejects_as: Literal[1, -1] = Field(
        1,
        description="xmp:Rating written for a 1-star photo: 1, or -1 (rejected, as Lightroom, darktable and "
        "digiKam read it). The photo is filed in 1-star either way.")
    xmp_in_jpeg: bool = Field(
        False,
        description="Also write the rating into a JPEG's own XMP (Lightroom ignores sidecars of JPEGs). "
        "This rewrites the JPEG's metadata; its image data is kept as it is.")

    @model_validator(mode="before")
    @classmethod
    def _old_naming_key(cls, data: Any) -> Any:
        # Older configs say `naming: adobe|darktable|both`.
        if isinstance(data, dict) and "naming" in data and "sidecar_naming" not in data:
            data = dict(data)
            old = data.pop("naming")
            data["sidecar_naming"] = "ext" if old == "darktable" else old
        return data

    @field_validator("pick_label")
    @classmethod
    def _label_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must be a label such as Green, or null for none")
        return v


class ExifConfig(Section):
    required: list[str] = Field(
        default_factory=lambda: ["DateTimeOriginal", "Make", "Model", "ExposureTime", "FNumber", "ISO"],
        description="EXIF tags every photo should carry; the report lists the missing ones in exif_missing. "
        "Names as exiv2 spells them (DateTimeOriginal, LensModel, or a full key such as Exif.Photo.LensModel); "
        "ISO means ISOSpeedRatings. Read when a photo is analysed.")
    earliest_year: int = Field(
        1990, ge=1826, le=2100,
        description="A capture time before this year is reported as a problem (an unset camera clock).")


class DuplicatesConfig(Section):
    max_distance: int = Field(
        2, ge=0, le=16,
        description="Largest pHash Hamming distance (of 64 bits) between duplicates, across the whole "
        "library, for `starsort duplicates` and the report's duplicate_of column. Re-encoded or resized "
        "copies differ by 0-2 bits; frames of one burst by 0-4.")
    on_import: Literal["skip", "file"] = Field(
        "skip", description="A new photo byte-identical to one already filed (a card imported twice): "
        "skip = not filed again (in move mode it goes to <library>/duplicates/, never deleted; in copy "
        "mode it is left where it is); file = filed like any other photo, under a name of its own. "
        "rate-in-place mode rates every file where it lies.")


class ReviewConfig(Section):
    enabled: bool = Field(
        True, description="Serve the review page (and its JSON API) from the running service, on loopback only.")
    port: int = Field(
        8765, ge=0, le=65535,
        description="TCP port of the review page on 127.0.0.1 and ::1; 0 picks a free one (`starsort review "
        "--url` prints where).")
    previews: Path = Field(
        default_factory=paths.default_previews,
        description="Where the analysis workers keep the page's previews (about 400 px and 2048 px JPEGs, "
        "about 0.5 MB a photo); a cache: deleting it only costs making them again.")

    @field_validator("previews")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return paths.expand(v)


class SortConfig(Section):
    scheduler: str | None = Field(
        None, description="`starsort sort` only: a Dask scheduler (tcp://HOST:8786) whose workers analyse the "
        "photos; this machine keeps the database, bursts, filing and XMP. Empty: analyse here. The service "
        "(`starsort run`) always analyses here. Needs `pip install 'starsort[cluster]'` on every machine.")
    path_map: list[str] = Field(
        default_factory=list,
        description="Where the workers see this machine's folders, as THIS_PATH=WORKER_PATH "
        "(e.g. /mnt/nas=/Volumes/nas), when they mount the shared photos elsewhere.")
    max_in_flight: int | None = Field(
        None, ge=1, le=100_000,
        description="Most photos out at the workers at once; empty: twice the workers' threads.")

    @field_validator("path_map")
    @classmethod
    def _maps(cls, v: list[str]) -> list[str]:
        for item in v:
            src, sep, dst = item.partition("=")
            if not sep or not src.startswith("/") or not dst.startswith("/"):
                raise ValueError(f"{item!r} is not THIS_PATH=WORKER_PATH with both absolute")
        return v


class PeopleConfig(Section):
    enabled: bool = Field(
        True, description="Embed every face (SFace, in the analysis workers) so `starsort people find` and "
        "the People view can tell who is who. Off: no embedding is made, and `starsort people` has nothing to "
        "search. Face data never leaves this machine.")
    threshold: float = Field(
        0.40, gt=0, lt=2,
        description="Cosine distance between two faces' embeddings under which they are taken for one person "
        "(`people find`, a new face joining a named person). Lower: fewer false matches, more missed photos. "
        "0.40, with expand_threshold 0.35: the pair that gave the best recall at full precision on the tuning "
        "part of the labelled set (bench/people_quality.py).")
    expand_threshold: float = Field(
        0.35, ge=0, lt=2,
        description="`people find`: faces this close to the reference are sure matches, and are averaged with "
        "it into a second query, so photos of the person in another light or pose are found too. Never above "
        "`threshold` (the lower of the two counts). 0 turns it off: the reference alone.")
    group_threshold: float = Field(
        0.45, gt=0, lt=2,
        description="Average cosine distance under which unnamed faces are grouped into one suggested person "
        "(an average over every pair, so not comparable with `threshold`, which is one face to another). Kept "
        "strict: a wrong group costs the photographer a split, a missed one only a merge.")
    group_min_face_px: int = Field(
        64, ge=16, le=4096,
        description="Faces narrower than this (in original pixels) are never grouped automatically: too "
        "little of them to be sure. They stay searchable with `people find`.")


class NotificationsConfig(Section):
    enabled: bool = Field(
        True, description="Desktop notifications from the service, on changes only: a problem raised or cleared "
        "(library full or missing, a run of quarantines) and a shoot drained (how many filed, by stars). Sent "
        "only when the service can reach a desktop session bus; never from a headless machine.")
    min_interval_seconds: float = Field(
        60.0, ge=0,
        description="At most one notification of each kind (one problem, or a drained shoot) this often: a "
        "disk that fills and frees every few seconds does not flood the desktop.")


class Config(Section):
    inboxes: list[Path] = Field(
        default_factory=lambda: [paths.default_inbox()],
        description="Folders to watch, recursively, for new photos (camera import, tethering).")
    library: Path = Field(
        default_factory=paths.default_library,
        description="Where photos are filed: <library>/1-star … 5-stars, and <library>/quarantine.")
    database: Path = Field(
        default_factory=paths.default_database,
        description="The SQLite database: queue, analysis results and the move journal. Keep it on local disk.")
    mode: Literal["move", "copy", "rate-in-place"] = Field(
        "move", description="move: originals leave the inbox; copy: originals stay, copies are filed; "
        "rate-in-place: nothing moves, only the XMP ratings are written (for catalogues that must not see "
        "files move).")
    settle_seconds: float = Field(
        2.0, ge=0, description="A file is ready once its size and mtime have not changed for this long.")
    rescan_interval: float = Field(
        60.0, gt=0, description="Seconds between full scans of the inboxes, which catch lost events.")
    workers: int = Field(1, ge=1, le=64, description="Analysis worker processes.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log verbosity.")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig, description="Decoding for analysis.")
    faces: FacesConfig = Field(default_factory=FacesConfig, description="Face detection (MTCNN).")
    blur: BlurConfig = Field(default_factory=BlurConfig, description="Blur scoring.")
    stars: StarsConfig = Field(default_factory=StarsConfig, description="From blur to stars.")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="Burst clustering by pHash.")
    xmp: XmpConfig = Field(default_factory=XmpConfig, description="Ratings for Lightroom and darktable.")
    exif: ExifConfig = Field(default_factory=ExifConfig, description="EXIF validation, for the report.")
    duplicates: DuplicatesConfig = Field(default_factory=DuplicatesConfig,
                                         description="Duplicate photos across the library.")
    review: ReviewConfig = Field(default_factory=ReviewConfig,
                                 description="The review page: every decision with its evidence, overruled with one key.")
    sort: SortConfig = Field(default_factory=SortConfig,
                             description="`starsort sort` across machines, on a Dask cluster.")
    people: PeopleConfig = Field(default_factory=PeopleConfig,
                                 description="Who is in each photo: face embeddings, search, people.")
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig,
                                               description="Desktop notifications.")

    @field_validator("inboxes", mode="before")
    @classmethod
    def _one_inbox_is_a_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, (str, Path)) else v

    @field_validator("inboxes")
    @classmethod
    def _inboxes(cls, v: list[Path]) -> list[Path]:
        if not v:
            raise ValueError("needs at least one folder")
        return [paths.expand(p) for p in v]

    @field_validator("library", "database")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return paths.expand(v)


def overlap_problems(inboxes: list, library: Any) -> list[str]:
    """Library inside an inbox, or an inbox inside the library: one line each.

    The daemon would re-ingest its own output, or file the inbox into itself;
    rsync refuses source == destination for the same reason.
    """
    problems = []
    lib = _real(paths.expand(library))
    for i, inbox in enumerate(inboxes):
        box = _real(paths.expand(inbox))
        if _inside(lib, box):
            problems.append(f"library: {library} is inside inboxes[{i}] ({inbox})")
        elif _inside(box, lib):
            problems.append(f"inboxes[{i}]: {inbox} is inside the library ({library})")
    return problems


def _real(p: Path) -> Path:
    return Path(os.path.realpath(p))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _format_error(err: dict) -> str:
    loc = ".".join(str(x) if not isinstance(x, int) else f"[{x}]" for x in err["loc"]).replace(".[", "[")
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:
        # Cross-field problems carry their own key names ("library: …").
        return msg
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key{_suggestion(err['loc'])}"
    return f"{loc}: {msg} (got {_shown(err.get('input'))})"


def _suggestion(loc: tuple) -> str:
    """'; did you mean settle_seconds?' for a misspelt key, from the keys its section has."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse(data: Any, source: str = "<config>") -> Config:
    """Validate a parsed YAML mapping; raise ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys to values"])
    lines: list[str] = []
    cfg = None
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        lines = [_format_error(err) for err in e.errors(include_url=False)]
    # Checked on the raw values too, so an overlap is reported alongside
    # any other problem rather than after the user fixes those.
    inboxes = cfg.inboxes if cfg else data.get("inboxes", [paths.default_inbox()])
    library = cfg.library if cfg else data.get("library", paths.default_library())
    if isinstance(inboxes, (str, Path)):
        inboxes = [inboxes]
    if isinstance(inboxes, list) and isinstance(library, (str, Path)) and all(isinstance(i, (str, Path)) for i in inboxes):
        lines += overlap_problems(inboxes, library)
    if lines:
        raise ConfigError(source, lines)
    return cfg


def load(path: Path | None) -> tuple[Config, Path | None]:
    """Load the config from `path`, else the default file, else built-in defaults.

    Returns the config and the file it came from (None for defaults).
    """
    explicit = path is not None
    path = Path(path) if path is not None else paths.default_config_file()
    if not path.exists():
        if explicit:
            raise ConfigError(str(path), ["file not found"])
        return with_found_database(parse({}, "defaults")), None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        # PyYAML names the stream "<unicode string>" and counts lines from 0;
        # say the file and the line (from 1) an editor shows.
        # Where an unclosed bracket or quote began is where to look, so the
        # context's line comes first when there is one.
        context, problem = getattr(e, "context", None), getattr(e, "problem", None)
        start, found = getattr(e, "context_mark", None), getattr(e, "problem_mark", None)
        mark = start or found
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = ", ".join(x for x in (context, problem) if x) or str(e).splitlines()[0]
        if start is not None and found is not None and found.line != start.line:
            what += f" (at line {found.line + 1})"
        raise ConfigError(where, [f"YAML syntax: {what}"]) from None
    except OSError as e:
        raise ConfigError(str(path), [f"cannot read: {e.strerror}"]) from None
    return with_found_database(parse(data, str(path))), path


def creates_inbox(cfg: Config) -> bool:
    """The built-in default inbox is made on first run; a configured one never is: a
    missing one is a card not inserted or a share not mounted, and starsort waits for it."""
    return "inboxes" not in cfg.model_fields_set


def folder_problems(cfg: Config) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the folders on disk, one line each, naming the key."""
    errors: list[str] = []
    warnings: list[str] = []
    if not creates_inbox(cfg):
        for i, inbox in enumerate(cfg.inboxes):
            if not inbox.is_dir():
                warnings.append(f"inboxes[{i}]: {inbox} does not exist (yet): starsort watches for it to appear"
                                " and never creates it")
    lib = Path(cfg.library)
    if not lib.is_dir() and paths.below_absent_mount(lib):
        errors.append(f"library: {lib} is below a mount point that is not there: is the disk mounted?"
                      " (starsort would otherwise create it on the disk below)")
    return errors, warnings


def database_explicit(cfg: Config) -> bool:
    """Whether the config names its database (else the default, and the legacy places, are used)."""
    return "database" in cfg.model_fields_set


def with_found_database(cfg: Config) -> Config:
    """The config with `database` set to where the database is: the service and the CLI both call this."""
    found = paths.find_database(cfg.database, database_explicit(cfg))
    if found == cfg.database:
        return cfg
    out = cfg.model_copy(update={"database": found})
    out.__pydantic_fields_set__.discard("database")
    return out


# ---- example rendering -------------------------------------------------------

_EXAMPLE_OVERRIDES = {
    # Defaults that depend on $HOME are shown in their portable form.
    "inboxes": ["~/Pictures/starsort/inbox"],
    "library": "~/Pictures/starsort/library",
    "database": "$XDG_STATE_HOME/starsort/starsort.db",
    "previews": "$XDG_CACHE_HOME/starsort/previews",
}


def _yaml_value(v: Any) -> str:
    if isinstance(v, Path):
        v = str(v)
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, list) and v and isinstance(v[0], (tuple, list)):
        v = [list(x) for x in v]
    return yaml.safe_dump(v, default_flow_style=True, width=1000).strip().removesuffix("\n...").strip()


def _render_model(model: type[BaseModel], indent: int, overrides: dict) -> list[str]:
    out: list[str] = []
    pad = "  " * indent
    inst = model()
    for name, field in model.model_fields.items():
        desc = field.description or ""
        value = getattr(inst, name)
        if isinstance(value, BaseModel):
            out.append("")
            out.append(f"{pad}# {desc}")
            out.append(f"{pad}{name}:")
            out.extend(_render_model(type(value), indent + 1, overrides))
            continue
        if name in overrides:
            value = overrides[name]
        for line in _wrap(desc, 88 - len(pad) - 2):
            out.append(f"{pad}# {line}")
        if isinstance(value, list) and value and not isinstance(value[0], (tuple, list)):
            out.append(f"{pad}{name}:")
            out.extend(f"{pad}  - {_yaml_value(x)}" for x in value)
        else:
            out.append(f"{pad}{name}: {_yaml_value(value)}")
    return out


def _wrap(text: str, width: int) -> list[str]:
    import textwrap
    return textwrap.wrap(text, width) or [""]


def render_example() -> str:
    """The commented example config, generated from the schema (config/example.yaml)."""
    head = [
        "# starsort configuration. Every key is optional; the values shown are the defaults.",
        "# Default location: $XDG_CONFIG_HOME/starsort/config.yaml (~/.config/starsort/config.yaml).",
        "# Generated by `starsort config example`; check a file with `starsort config check`.",
        "",
    ]
    return "\n".join(head + _render_model(Config, 0, _EXAMPLE_OVERRIDES)) + "\n"
