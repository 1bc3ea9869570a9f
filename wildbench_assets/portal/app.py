"""The researcher portal: the thesis's web application, reading only what the pipeline publishes.

Pages (server-rendered, a few lines of JavaScript for the progress bar and the live count) and a JSON
API with OpenAPI. Reads the releases, the leaderboard table, the request and submission inboxes and
run status from the Dagster instance; recomputes nothing. Anything that starts work (a request, a
submission, an inference) needs a token: the operator's (`WILDBENCH_PORTAL_TOKEN`) or a submitter's
(`WILDBENCH_PORTAL_TOKENS_FILE`). A submission's score is shown only to the token it was sent with, and
each submitter gets a few submissions per release and day (`lib.submissions`, the inbox's rule too).
Uploads are limited in size and must decode as images; every name from a request is checked against
what exists before any file is touched.
"""

from __future__ import annotations

import html
import io
import json
import secrets
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from wildbench_assets import layout
from wildbench_assets.lib import detectors
from wildbench_assets.lib.dataset_requests import (
    LEFT_OUT_NOTE,
    PROGRESS_SUFFIX,
    REQUEST_ID,
    RequestError,
    left_out_estimate,
    parse_spec,
    select_images,
)
from wildbench_assets.lib.image_decode import ImageTooLarge, UndecodableImage, decode_image, header_size
from wildbench_assets.lib.releases import RELEASE_SUFFIX
from wildbench_assets.lib.splits import SPLITS
from wildbench_assets.lib.submissions import OPERATOR, SUBMITTER_SUFFIX, SubmitterError, named_submitter
from wildbench_assets.resources.release_store import ReleaseStore
from wildbench_assets.resources.release_writer import hidden_sets
from wildbench_assets.settings import download_expiry_s

HERE = Path(__file__).resolve().parent
MAX_UPLOAD_BYTES = 20 * 1024 * 1024   # per photo or submission file
MAX_PHOTOS = 5
MAX_PIXELS_PER_PHOTO = 40_000_000      # camera traps shoot up to ~30 MP; the detector sees 1280 px anyway
MAX_PIXELS_PER_REQUEST = 60_000_000    # what one request may make the server decode, all photos together
RELEASE_FILES = {"train.zip", "val.zip", "test.zip", "test_seen.zip"}
# what an outcome file may show (never server paths, never a score's breakdowns: a score file from before
# aggregates-only scoring is shown without them)
PUBLIC_OUTCOME_KEYS = {"error", "images", "left_out", "selected", "dropped", "summary", "spec", "sha256", "at",
                       "release", "submitter", "test", "test_seen", "threshold", "decimals", "stage", "done", "total",
                       "counted"}  # counted: a failed submission charged against the limit
TOKEN_COOKIE = "wildbench_token"  # set by the submission form, so its status page can be reloaded
CAMTRAP_DP_FILES = {"datapackage.json", "deployments.csv", "media.csv", "observations.csv"}


class Portal:
    """What the pages read, through the pipeline's own resources."""

    def __init__(self, defs, token: str | None, instance=None, tokens: dict[str, str] | None = None):
        self.defs, self.token, self._instance = defs, token, instance
        # submitter -> token; the operator's token is the submitter `operator`
        self.tokens = {**(tokens or {}), **({OPERATOR: token} if token else {})}
        # Resolved: in prod every location is an EnvVar, and an unresolved one is a str naming the variable
        # (the portal would read a local folder called WILDBENCH_DATA and show no release).
        res = {name: defs.resources[name].process_config_and_initialize() for name in
               ("artifacts", "parquet_io_manager", "taxonomy", "inbox", "submissions", "detector")}
        self.artifacts, self.tables, self.taxonomy = res["artifacts"], res["parquet_io_manager"], res["taxonomy"]
        self.requests, self.submissions, self.detector = res["inbox"], res["submissions"], res["detector"]
        self.release_store = ReleaseStore(self.artifacts)

    # --- what the pipeline published -------------------------------------------------------------
    def releases(self) -> list[dict]:
        """Every cut release's datasheet, newest first. Only the datasheets are read (with S3: fetched), never
        a release's ZIPs: downloads go straight from the store to the researcher."""
        return sorted(self.release_store.datasheets(), key=lambda s: s["cut_at"], reverse=True)

    def release(self, release_id: str) -> dict:
        for sheet in self.releases():  # only ids that exist reach the file system
            if sheet["release"] == release_id:
                return sheet
        raise HTTPException(404, f"no release {release_id!r}")

    def download(self, relative: str, filename: str, missing: tuple[int, str]):
        """A stored ZIP as a response: a redirect to a presigned URL when artefacts live in S3 (the bytes go
        from the bucket to the researcher, not through this server: nothing is fetched), else the file streamed."""
        if not self.artifacts.exists(relative):
            raise HTTPException(*missing)
        if self.artifacts.remote:
            return RedirectResponse(self.artifacts.download_url(relative, download_expiry_s()), status_code=307)
        return FileResponse(self.artifacts.path(relative), filename=filename, media_type="application/zip")

    def release_file(self, release_id: str, name: str):
        self.release(release_id)
        if name not in RELEASE_FILES:
            raise HTTPException(404, f"a release offers {sorted(RELEASE_FILES)}, not {name!r}")
        return self.download(layout.release_download(release_id, name), f"wildbench-{release_id}-{name}",
                             (404, f"{name} is not in release {release_id}"))

    def camtrap_file(self, release_id: str, name: str):
        """A Camtrap DP file, served by the portal (with S3: streamed from the bucket, nothing cached)."""
        self.release(release_id)
        relative = f"{layout.CAMTRAP_DP}/{name}"
        if name not in CAMTRAP_DP_FILES or not self.release_store.has_file(release_id, relative):
            raise HTTPException(404, f"release {release_id} has no Camtrap DP file {name!r}")
        media_type = "application/json" if name.endswith(".json") else "text/csv"
        if not self.artifacts.remote:
            return FileResponse(self.release_store.local_file(release_id, relative), filename=name,
                                media_type=media_type)
        return StreamingResponse(self.release_store.open(release_id, relative), media_type=media_type,
                                 headers={"content-disposition": f'attachment; filename="{name}"'})

    def leaderboard(self) -> pd.DataFrame:
        table = self.tables.load_partition("leaderboard")
        return table if table is not None else pd.DataFrame()

    def curated(self) -> pd.DataFrame:
        table = self.tables.load_every_partition("curated_images")  # one per park; a folder or S3 alike
        empty = pd.DataFrame(columns=["path", "park", "species", "camera", "captured_at"])
        return table if table is not None else empty

    def hidden(self) -> list:
        """What requests withhold from: every cut release and the current splits (as `custom_export`)."""
        return hidden_sets(self.artifacts, [self.tables.load_partition("benchmark_splits", s) for s in SPLITS])

    def known_labels(self) -> pd.DataFrame:
        """Labels already computed (the benchmark's `detection_labels`, every split): path, label_status."""
        tables = [t[["path", "label_status"]] for t in (self.tables.load_partition("detection_labels", s)
                                                        for s in SPLITS) if t is not None and len(t)]
        return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["path", "label_status"])

    def run_status(self, tag: str, item_id: str) -> str | None:
        """The latest Dagster run's status for a request or submission, if the instance has one."""
        if self._instance is None:
            return None
        import dagster as dg

        runs = self._instance.get_runs(dg.RunsFilter(tags={tag: item_id}), limit=1)
        return runs[0].status.value if runs else None

    def outcome(self, inbox, item_id: str) -> dict:
        """queued / running (with progress) / done / failed, from the inbox files the run writes."""
        if not REQUEST_ID.match(item_id):
            raise HTTPException(404, "no such id")
        store = inbox.open()
        for suffix, state in ((".result.json", "done"), (".score.json", "done"), (".error.json", "failed")):
            raw = store.read_optional(f"{item_id}{suffix}")
            if raw is not None:  # only what a researcher needs: never the server paths a result names
                shown = {k: v for k, v in json.loads(raw).items() if k in PUBLIC_OUTCOME_KEYS}
                return {"id": item_id, "state": state, **shown}
        if store.read_optional(f"{item_id}.json") is None and store.read_optional(f"{item_id}.csv") is None:
            raise HTTPException(404, f"no request or submission {item_id!r}")
        progress = store.read_optional(f"{item_id}{PROGRESS_SUFFIX}")
        if progress is not None:
            shown = {k: v for k, v in json.loads(progress).items() if k in PUBLIC_OUTCOME_KEYS}
            return {"id": item_id, "state": "running", **shown}
        return {"id": item_id, "state": "queued", "stage": "waiting for the pipeline", "done": 0, "total": 0}

    def current_release(self) -> str | None:
        """The release a submission that names none is scored on (the pipeline's `latest_release`)."""
        if self._instance is not None:
            from wildbench_assets.ingest_state import latest_release

            return latest_release(self._instance, self.artifacts)
        current = next((r for r in self.releases() if r.get("profile", "default") == "default"), None)
        return current["release"] if current else None

    def submission(self, submission_id: str, token: str | None) -> dict:
        """A submission's outcome, for the token of the submitter who sent it only; anyone else learns
        nothing, not even whether it exists."""
        if not REQUEST_ID.match(submission_id):
            raise HTTPException(404, "no such id")
        submitter = self.submitter(token)
        try:
            owner = named_submitter(self.submissions.read_item(submission_id, (SUBMITTER_SUFFIX,)))
        except SubmitterError:
            owner = None
        if owner != submitter:
            raise HTTPException(404, f"no submission {submission_id!r} was sent with this token")
        return self.outcome(self.submissions, submission_id)

    def admit_submission(self, submitter: str) -> tuple[str, str | None]:
        """(a new submission id, the release it will be scored on), or 429 with the reason when the
        submitter has used up its submissions on that release (the inbox's rule: `Limit.refusal`)."""
        from wildbench_assets.settings import submission_limit

        submission_id, release, now = f"web-{uuid.uuid4().hex[:12]}", self.current_release(), datetime.now(UTC)
        limit = submission_limit()
        refusal = limit.refusal(self.submissions.submission_history(release, now - limit.window), submission_id,
                                submitter, release, now)
        if refusal:
            raise HTTPException(429, refusal)
        return submission_id, release

    # --- what starts work -------------------------------------------------------------------------
    def submitter(self, given: str | None) -> str:
        """The submitter a token belongs to (401 for none or an unknown one, 503 when none is configured)."""
        if not self.tokens:
            raise HTTPException(503, "this portal accepts no work: its operator configured no API token")
        found = None
        for name, token in self.tokens.items():  # every token compared: the time says nothing of which matched
            if given and secrets.compare_digest(given.encode(), token.encode()):
                found = name
        if found is None:
            raise HTTPException(401, "a valid API token is needed to start work")
        return found

    def check_token(self, given: str | None) -> None:
        self.submitter(given)


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


async def _read_limited(upload: UploadFile) -> bytes:
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"{upload.filename}: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
    return data


def _counts_svg(counts: dict[str, dict[str, dict[str, int]]]) -> str:
    """A horizontal bar chart of images per species and park (all splits), as inline SVG."""
    totals: dict[tuple[str, str], int] = {}
    for per_species in counts.values():
        for species, per_park in per_species.items():
            for park, n in per_park.items():
                totals[(species, park)] = totals.get((species, park), 0) + n
    if not totals:
        return "<p>No images yet.</p>"
    parks = sorted({p for _s, p in totals})
    species = sorted({s for s, _p in totals}, key=lambda s: -sum(totals.get((s, p), 0) for p in parks))
    top, colours = max(totals.values()), ["#2f6f4e", "#c0843d", "#4b6cb7", "#a33"]
    rows, y = [], 0
    for code in species:
        x = 70
        for i, park in enumerate(parks):
            n = totals.get((code, park), 0)
            width = 400 * n / top
            rows.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="14" fill="{colours[i % 4]}">'
                        f"<title>{html.escape(code)} {html.escape(park)}: {n}</title></rect>")
            x += width
        rows.append(f'<text x="0" y="{y + 11}" font-size="11">{html.escape(code)}</text>')
        y += 18
    legend = " ".join(f'<tspan fill="{colours[i % 4]}">■ {html.escape(p)}</tspan>' for i, p in enumerate(parks))
    return (f'<svg role="img" aria-label="images per species and park" width="520" height="{y + 20}">'
            f'{"".join(rows)}<text x="70" y="{y + 14}" font-size="12">{legend}</text></svg>')


BOARD_TITLES = {"map_50_95": "mAP@[.5:.95]", "seen_map_50": "seen mAP@.5", "gap_map_50": "gap mAP@.5",
                "event_accuracy": "event accuracy", "seen_accuracy": "seen accuracy", "gap_accuracy": "gap accuracy",
                "tied_with": "tied with (≈)"}


def _board_entry(row: dict) -> dict:
    """A leaderboard row as the page shows it: counts as integers, a number with its 95 % interval as
    `value [low, high]`."""
    entry = {**row, **{k: None if row.get(k) is None else int(row[k]) for k in ("images", "sequences")}}
    for metric, title in (("map_50", "mAP@.5 [95% CI]"), ("accuracy", "accuracy [95% CI]")):
        value, low, high = row.get(metric), row.get(f"{metric}_low"), row.get(f"{metric}_high")
        entry[title] = None if value is None else f"{value:.3f}" if low is None or high is None else \
            f"{value:.3f} [{low:.3f}, {high:.3f}]"
    entry["tied_with"] = row.get("tied_with") or None
    return entry


def _scores_svg(rows: list[dict]) -> str:
    """mAP@.5 on unseen (dark) and seen (light) cameras per model, as inline SVG; image-level accuracy
    where a row has no boxes (the thesis's rows)."""
    bars, y = [], 0
    for row in rows:
        unseen = row.get("map_50") if row.get("map_50") is not None else row.get("accuracy")
        seen = row.get("seen_map_50") if row.get("map_50") is not None else row.get("seen_accuracy")
        label = html.escape(str(row["model"]))
        bars.append(f'<text x="0" y="{y + 11}" font-size="11">{label}</text>')
        for offset, value, colour in ((0, unseen, "#2f6f4e"), (7, seen, "#9cc5a1")):
            if value is not None:
                bars.append(f'<rect x="220" y="{y + offset}" width="{300 * float(value):.1f}" height="7" '
                            f'fill="{colour}"><title>{label}: {float(value):.4f}</title></rect>')
        y += 20
    return (f'<svg role="img" aria-label="scores on unseen and seen cameras" width="540" height="{y + 16}">'
            f'{"".join(bars)}<text x="220" y="{y + 12}" font-size="11">■ unseen cameras ■ seen cameras '
            f'(mAP@.5, or accuracy without boxes)</text></svg>')


class BodyGuard:
    """Runs before any request body is read: a POST without a length or longer than the largest accepted
    upload is refused (411/413), and an API POST without a valid token is refused (401/503), so nobody
    without a token can make the server spool large bodies to memory or disk."""

    def __init__(self, app, portal: Portal):
        self.app, self.portal = app, portal

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = dict(scope["headers"])
            length = headers.get(b"content-length", b"").decode()
            refusal = None
            if not length.isdigit():
                refusal = (411, "an upload must say its length (Content-Length)")
            elif int(length) > MAX_PHOTOS * MAX_UPLOAD_BYTES + (1 << 20):
                refusal = (413, f"larger than {MAX_PHOTOS} x {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
            elif scope["path"].startswith("/api/"):
                try:
                    self.portal.check_token(_bearer(headers.get(b"authorization", b"").decode() or None))
                except HTTPException as exc:
                    refusal = (exc.status_code, exc.detail)
            if refusal is not None:
                status, message = refusal
                response = (JSONResponse({"error": message}, status_code=status) if scope["path"].startswith("/api/")
                            else HTMLResponse(f"<!doctype html><title>Error {status}</title><h1>Error {status}</h1>"
                                              f"<p>{html.escape(message)}</p>", status_code=status))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(defs=None, token: str | None = None, instance=None, tokens: dict[str, str] | None = None) -> FastAPI:
    """The portal over `defs`' resources (default: the deployment's), the operator's `token` and the
    submitters' `tokens` (name -> token; defaults from the environment) and the Dagster instance for run
    status (default: none)."""
    from wildbench_assets import settings

    if defs is None:
        from wildbench_assets.definitions import build_defs

        defs = build_defs()
    portal = Portal(defs, token if token is not None else settings.portal_token(), instance,
                    tokens if tokens is not None else settings.submitter_tokens())
    app = FastAPI(title="WildBench portal", version="1",
                  description="The benchmark's releases, leaderboard, custom dataset requests, submissions "
                              "and species predictions (the thesis's /api/...).",
                  docs_url=None, redoc_url=None)  # the API page below is served offline
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, name: str, **context) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"token_needed": bool(portal.tokens), **context})

    app.add_middleware(BodyGuard, portal=portal)

    @app.exception_handler(RequestValidationError)  # a missing or malformed field, as a readable answer
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors())
        return await _errors(request, StarletteHTTPException(422, problems))

    @app.exception_handler(StarletteHTTPException)  # ours and the router's own (unknown paths)
    async def _errors(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "message": exc.detail,
                                                                  "token_needed": False},
                                          status_code=exc.status_code)

    def token_from(authorization: Annotated[str | None, Header()] = None, token: Annotated[str | None, Form()] = None):
        portal.check_token(_bearer(authorization) or token)

    def token_header(authorization: Annotated[str | None, Header()] = None):
        portal.check_token(_bearer(authorization))

    def submitter_from(authorization: Annotated[str | None, Header()] = None,
                       token: Annotated[str | None, Form()] = None) -> str:
        return portal.submitter(_bearer(authorization) or token)

    def remember(response, request: Request, token: str):
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/submissions",
                            secure=request.url.scheme == "https")
        return response

    # --- pages -----------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request):
        releases = portal.releases()
        # the benchmark's current release: the newest of the default profile (a thesis-profile release
        # only measures the thesis's protocol)
        current = next((r for r in releases if r.get("profile", "default") == "default"), None)
        return page(request, "home.html", release=current, detector=detectors.display_name(portal.detector.backend),
                    chart=_counts_svg(current["counts"]) if current else "")

    @app.get("/datasets", response_class=HTMLResponse, include_in_schema=False)
    def datasets_page(request: Request):
        return page(request, "datasets.html", releases=portal.releases(), files=sorted(RELEASE_FILES))

    @app.get("/leaderboard", response_class=HTMLResponse, include_in_schema=False)
    def leaderboard_page(request: Request):
        board = portal.leaderboard()
        columns = ["model", "images", "sequences", "mAP@.5 [95% CI]", "map_50_95", "seen_map_50", "gap_map_50",
                   "accuracy [95% CI]", "event_accuracy", "seen_accuracy", "gap_accuracy", "tied_with"]
        by_release = {}
        for release, rows in (board.groupby("release", sort=True) if len(board) else []):
            entries = [_board_entry(row) for row in rows.astype(object).where(rows.notna(), None).to_dict("records")]
            by_release[release] = {"rows": entries, "chart": _scores_svg(entries)}
        return page(request, "leaderboard.html", by_release=by_release, columns=columns, titles=BOARD_TITLES)

    @app.get("/requests/new", response_class=HTMLResponse, include_in_schema=False)
    def request_form(request: Request):
        tax = portal.taxonomy.load()
        return page(request, "request_new.html", species=tax.species, parks=tax.parks, left_out_note=LEFT_OUT_NOTE)

    @app.get("/requests/{request_id}", response_class=HTMLResponse, include_in_schema=False)
    def request_page(request: Request, request_id: str):
        return page(request, "request_status.html", status=portal.outcome(portal.requests, request_id))

    @app.get("/submissions/{submission_id}", response_class=HTMLResponse, include_in_schema=False)
    def submission_page(request: Request, submission_id: str,
                        authorization: Annotated[str | None, Header()] = None):
        token = _bearer(authorization) or request.cookies.get(TOKEN_COOKIE)  # the cookie the form set
        if not token:  # ask for it
            return page(request, "submission_status.html", status=None, submission_id=submission_id)
        status = portal.submission(submission_id, token)
        return page(request, "submission_status.html", status=status, submission_id=submission_id)

    @app.post("/submissions/{submission_id}", include_in_schema=False)
    def submission_login(request: Request, submission_id: str, token: Annotated[str, Form()]):
        portal.submission(submission_id, token)
        return remember(RedirectResponse(f"/submissions/{submission_id}", status_code=303), request, token)

    @app.get("/inference", response_class=HTMLResponse, include_in_schema=False)
    def inference_page(request: Request):
        return page(request, "inference.html", results=None)

    @app.get("/api", response_class=HTMLResponse, include_in_schema=False)
    def api_page(request: Request):
        paths = [(method.upper(), path, op.get("summary", ""), op.get("description", ""))
                 for path, ops in app.openapi()["paths"].items() for method, op in ops.items()]
        return page(request, "api.html", paths=paths)

    # --- API -------------------------------------------------------------------------------------------
    @app.get("/api/datasets", summary="Every release with its datasheet")
    def api_datasets():
        return portal.releases()

    @app.get("/api/datasets/{release_id}", summary="One release's datasheet")
    def api_dataset(release_id: str):
        return portal.release(release_id)

    @app.get("/api/datasets/{release_id}/{name}", summary="Download a release file (streamed)")
    def api_download(release_id: str, name: str):
        return portal.release_file(release_id, name)

    @app.get("/api/datasets/{release_id}/camtrap-dp/{name}", summary="A file of the release's Camtrap DP package")
    def api_camtrap(release_id: str, name: str):
        return portal.camtrap_file(release_id, name)

    @app.get("/api/species", summary="The taxonomy's species (thesis Table 3.1)")
    def api_species():
        return [{"code": s.code, "scientific_name": s.scientific_name, "common_name": s.common_name}
                for s in portal.taxonomy.load().species]

    @app.get("/api/parks", summary="The parks")
    def api_parks():
        return [{"code": p.code, "name": p.name} for p in portal.taxonomy.load().parks]

    @app.get("/api/images", summary="How many curated images match a request (before submitting it)")
    def api_images(parks: str = "", species: str = "", start_date: str = "", end_date: str = "", offset: int = 0,
                   limit: int | None = None, include_empties: bool = False):
        tax = portal.taxonomy.load()
        raw = {"parks": [p for p in parks.split(",") if p], "species": [s for s in species.split(",") if s],
               "start_date": start_date or None, "end_date": end_date or None, "offset": offset, "limit": limit,
               "include_empties": include_empties}
        try:
            spec = parse_spec({k: v for k, v in raw.items() if v not in (None, [])}, tax.species_codes,
                              tax.park_codes)
        except RequestError as err:
            raise HTTPException(422, str(err)) from err
        try:
            selected = select_images(portal.curated(), spec, portal.hidden())
        except RequestError:
            selected = pd.DataFrame(columns=["path"])
        # what the ZIP may leave out (no animal box, unreadable), said before submitting
        return {"images": len(selected), **left_out_estimate(selected, portal.known_labels()), "spec": spec.to_dict()}

    @app.post("/api/queries", summary="Submit a custom dataset request (token)", status_code=202,
              dependencies=[Depends(token_header)])
    def api_query(spec: dict):
        return _submit_request(spec)

    def _submit_request(raw: dict) -> dict:
        tax = portal.taxonomy.load()
        try:
            spec = parse_spec(raw, tax.species_codes, tax.park_codes)  # the pipeline's own validation
        except RequestError as err:
            raise HTTPException(422, str(err)) from err
        request_id = f"web-{uuid.uuid4().hex[:12]}"
        portal.requests.write_json(f"{request_id}.json", spec.to_dict())
        return {"id": request_id, "state": "queued", "status_url": f"/api/queries/{request_id}"}

    @app.get("/api/queries/{request_id}", summary="A request's state and progress")
    def api_query_status(request_id: str):
        status = portal.outcome(portal.requests, request_id)
        status["run"] = portal.run_status("wildbench/request", request_id)
        if status["state"] == "done":
            status["download_url"] = f"/api/queries/{request_id}/download"
        return status

    @app.get("/api/queries/{request_id}/download", summary="A finished request's ZIP (streamed)")
    def api_query_download(request_id: str):
        status = portal.outcome(portal.requests, request_id)
        if status["state"] != "done":
            raise HTTPException(409, f"request {request_id} is {status['state']}, not done")
        # never the path the result file names: the request's own key
        return portal.download(layout.request_zip(request_id), f"wildbench-{request_id}.zip",
                               (410, f"the ZIP of request {request_id} is no longer kept"))

    @app.post("/requests", include_in_schema=False, dependencies=[Depends(token_from)])
    async def request_submit(request: Request):
        form = await request.form()
        try:
            raw = {"parks": form.getlist("parks"), "species": form.getlist("species"),
                   "start_date": form.get("start_date") or None, "end_date": form.get("end_date") or None,
                   "offset": int(form.get("offset") or 0), "include_empties": form.get("include_empties") == "on",
                   "formats": form.getlist("formats") or ["yolo"]}
            if form.get("limit"):
                raw["limit"] = int(form.get("limit"))
        except ValueError as err:
            raise HTTPException(422, "offset and limit are whole numbers") from err
        submitted = _submit_request({k: v for k, v in raw.items() if v not in (None, [])})
        return RedirectResponse(f"/requests/{submitted['id']}", status_code=303)

    @app.get("/api/leaderboard", summary="The leaderboard, every release")
    def api_leaderboard():
        board = portal.leaderboard()
        return json.loads(board.to_json(orient="records")) if len(board) else []

    @app.post("/api/submissions", summary="Submit predictions for the latest release's test sets (token; a few "
                                          "per submitter, release and day: 429 beyond)", status_code=202)
    async def api_submit(file: Annotated[UploadFile, File()], submitter: str = Depends(submitter_from)):
        suffix = Path(file.filename or "").suffix.lower()
        if suffix not in (".json", ".csv"):
            raise HTTPException(415, "a submission is a MegaDetector/COCO .json or an image_id,label .csv")
        data = await _read_limited(file)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise HTTPException(415, "a submission is UTF-8 text") from err
        submission_id, release = portal.admit_submission(submitter)
        store = portal.submissions.open()
        # who sent it and the release it was admitted for, before the file the sensor sees
        store.write(f"{submission_id}{SUBMITTER_SUFFIX}", f"{submitter}\n".encode())
        if release is not None:
            store.write(f"{submission_id}{RELEASE_SUFFIX}", f"{release}\n".encode())
        store.write(f"{submission_id}{suffix}", data)
        return {"id": submission_id, "state": "queued", "release": release,
                "status_url": f"/api/submissions/{submission_id}"}

    @app.post("/submissions", include_in_schema=False)
    async def submission_form(request: Request, file: Annotated[UploadFile, File()],
                              submitter: str = Depends(submitter_from),
                              token: Annotated[str | None, Form()] = None):
        submitted = await api_submit(file, submitter)
        redirect = RedirectResponse(f"/submissions/{submitted['id']}", status_code=303)
        return remember(redirect, request, token) if token else redirect

    @app.get("/api/submissions/{submission_id}", summary="A submission's score or its error (the token it was "
                                                         "sent with)")
    def api_submission_status(submission_id: str, authorization: Annotated[str | None, Header()] = None):
        return portal.submission(submission_id, _bearer(authorization))

    async def _predict(files: list[UploadFile]) -> dict:
        from wildbench_assets.lib import predictions as pred
        from wildbench_assets.resources import model_store

        if not files or len(files) > MAX_PHOTOS:
            raise HTTPException(422, f"send 1 to {MAX_PHOTOS} photos")
        photos, total = [], 0
        for upload in files:  # every header is measured before any photo is decoded
            data = await _read_limited(upload)
            try:
                width, height = header_size(data)
            except ImageTooLarge as err:
                raise HTTPException(413, f"{upload.filename}: too many pixels ({err})") from err
            except UndecodableImage as err:
                raise HTTPException(415, f"{upload.filename}: not a readable image ({err})") from err
            total += width * height
            if width * height > MAX_PIXELS_PER_PHOTO:
                raise HTTPException(413, f"{upload.filename}: {width}x{height} is more than "
                                         f"{MAX_PIXELS_PER_PHOTO // 1_000_000} megapixels per photo")
            if total > MAX_PIXELS_PER_REQUEST:
                raise HTTPException(413, f"the photos add up to more than {MAX_PIXELS_PER_REQUEST // 1_000_000} "
                                         "megapixels per request: send fewer or smaller photos")
            photos.append((Path(upload.filename or "photo.jpg").name, data))
        for name, data in photos:
            try:
                decode_image(data)
            except UndecodableImage as err:
                raise HTTPException(415, f"{name}: not a readable image ({err})") from err
        tax = portal.taxonomy.load()
        predictor = model_store.load_chosen_predictor(portal.artifacts, portal.leaderboard(), tax.class_names,
                                                      portal.detector, 0.1)
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for number, (_name, data) in enumerate(photos):  # our own names on disk, never the client's
                paths.append(Path(tmp) / f"{number}.jpg")
                paths[-1].write_bytes(data)
            items = list(zip([n for n, _d in photos], predictor.predict_files(paths)))
        annotated = []
        for (name_, prediction), (_n, data) in zip(items, photos):
            with Image.open(io.BytesIO(data)) as image:
                buffer = io.BytesIO()
                pred.annotate(image.convert("RGB"), prediction, predictor.class_names).save(buffer, "JPEG", quality=85)
            import base64

            annotated.append({"file": name_, "jpeg_base64": base64.b64encode(buffer.getvalue()).decode()})
        table = pred.predictions_table(items, predictor.class_names, predictor.name)
        warnings = pred.answer_warnings(items, predictor.answer)
        return {"model": predictor.name, "answer": predictor.answer, "warnings": warnings,
                "answer_lines": pred.answer_lines(predictor.answer, warnings),
                "predictions": json.loads(table.to_json(orient="records")),
                "megadetector_1_6": pred.md_batch_document(items, predictor.class_names, predictor.identity,
                                                           predictor.answer, warnings, predictor.min_confidence),
                "annotated": annotated}

    @app.post("/api/inference", summary="Species and boxes for 1-5 photos by the promoted model (token)",
              dependencies=[Depends(token_from)])
    async def api_inference(files: Annotated[list[UploadFile], File()]):
        return await _predict(files)

    @app.post("/inference", response_class=HTMLResponse, include_in_schema=False,
              dependencies=[Depends(token_from)])
    async def inference_form(request: Request, files: Annotated[list[UploadFile], File()]):
        return page(request, "inference.html", results=await _predict(files))

    return app
