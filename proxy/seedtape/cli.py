"""The ``seedtape`` command line (click; each command is a thin shell over a module)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from seedtape._version import __version__
from seedtape.config import Settings, default_upstream
from seedtape.durability import FSYNC_POLICIES
from seedtape.modes import MODE_NAMES


def _env(name: str) -> str:
    return f"SEEDTAPE_{name}"


def _cassette_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Cassette names are checked here exactly as the x-seedtape-cassette header is."""
    from seedtape.cassette import InvalidCassetteName, validate_name

    if value is None:
        return None
    try:
        return validate_name(value)
    except InvalidCassetteName as exc:
        raise click.BadParameter(str(exc)) from None


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:500]


class _Group(click.Group):
    """Every command's error is one line on stderr (``Error: ...``), never a traceback
    nor a usage block: exit status 2 for a bad option or argument, 1 for anything else
    (``SEEDTAPE_DEBUG=1`` shows the traceback)."""

    def main(
        self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None, standalone_mode: bool = True, **extra: Any
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("SEEDTAPE_DEBUG"):
                raise
            raise click.ClickException(_one_line(exc)) from exc


cassettes_option = click.option(
    "--cassettes",
    "cassettes_dir",
    type=click.Path(path_type=Path),
    default=Path("cassettes"),
    envvar=_env("CASSETTES"),
    show_default=True,
    help="Folder of cassettes (recordings committed to git).",
)


# Teams: the shared store's options, the same for serve, sync and report.
store_option = click.option(
    "--store",
    default="",
    envvar=_env("STORE"),
    metavar="URL",
    help="Shared store: redis://[user:password@]host:port/db (rediss:// for TLS). The password may come from SEEDTAPE_STORE_PASSWORD instead.",
)
namespace_option = click.option(
    "--namespace", default="default", envvar=_env("NAMESPACE"), show_default=True, help="Teams sharing one Redis never see each other's."
)
store_timeout_option = click.option(
    "--store-timeout",
    type=float,
    default=0.5,
    envvar=_env("STORE_TIMEOUT"),
    show_default=True,
    help="Seconds, bound on every Redis operation.",
)
store_ttl_option = click.option(
    "--store-ttl",
    "store_ttl_days",
    type=float,
    default=None,
    envvar=_env("STORE_TTL"),
    metavar="DAYS",
    help="Recordings unused this many days leave the store (default: never).",
)


def summary_of(command: click.Command) -> str:
    """A command's first sentence, whole: click's default cuts it at ~45 characters, mid-phrase."""
    if command.short_help:
        return command.short_help
    text = " ".join((command.help or "").split("\n\n")[0].split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


class SummaryGroup(_Group):
    """One-line errors (``_Group``), and a command list showing each summary whole (wrapped, never cut)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary_of(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=SummaryGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="seedtape")
def main() -> None:
    """Record-and-replay cache proxy for OpenAI and Azure OpenAI, with seed drift measurement."""


@main.command()
@click.option(
    "--mode",
    type=click.Choice(MODE_NAMES),
    default="auto",
    envvar=_env("MODE"),
    show_default=True,
    help="What to do with each request (README, Modes); a request's x-seedtape-mode header overrides it.",
)
@click.option(
    "--upstream",
    default=None,
    envvar=_env("UPSTREAM"),
    help="Upstream origin; 'sim' for the built-in simulator. Default: $AZURE_OPENAI_ENDPOINT, else the OpenAI API.",
)
@cassettes_option
@click.option(
    "--cassette",
    default="default",
    envvar=_env("CASSETTE"),
    show_default=True,
    callback=_cassette_name,
    help="Cassette (a folder under --cassettes) for requests without an x-seedtape-cassette header.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=Path(".seedtape-cache"),
    envvar=_env("CACHE_DIR"),
    show_default=True,
    help="Disposable derived data: the index, worker coordination, the drift log. Gitignore it.",
)
@click.option(
    "--host", default="127.0.0.1", envvar=_env("HOST"), show_default=True, help="Address to listen on (non-loopback needs --auth-token)."
)
@click.option("--port", type=int, default=8787, envvar=_env("PORT"), show_default=True, help="Port to listen on.")
@click.option(
    "--workers",
    type=int,
    default=1,
    envvar=_env("WORKERS"),
    show_default=True,
    help="Server processes; they share episode counters, locks and statistics through --cache-dir.",
)
@click.option(
    "--repeats",
    type=click.Choice(["auto", "cache", "sequence"]),
    default="auto",
    envvar=_env("REPEATS"),
    show_default=True,
    help="Identical request past the last episode: cache (serve the last), sequence (record a new one), auto (cache if seeded or temperature 0).",
)
@click.option(
    "--replay-exhausted",
    type=click.Choice(["repeat", "error"]),
    default="repeat",
    envvar=_env("REPLAY_EXHAUSTED"),
    show_default=True,
    help="replay: an identical request past the last episode gets the last one again, or an error.",
)
@click.option("--record-errors", is_flag=True, envvar=_env("RECORD_ERRORS"), help="Also record non-2xx upstream answers.")
@click.option("--ignore-field", "ignore_fields", multiple=True, help="Top-level body field left out of the key (repeatable).")
@click.option(
    "--keep-header",
    "keep_headers",
    multiple=True,
    help="Response header to store besides the defaults (never credentials; framing headers such as content-length are refused).",
)
@click.option(
    "--max-body",
    type=int,
    default=16 * 1024 * 1024,
    envvar=_env("MAX_BODY"),
    show_default=True,
    help="Largest request body in bytes (413 above it).",
)
@click.option(
    "--upstream-timeout",
    type=float,
    default=600.0,
    envvar=_env("UPSTREAM_TIMEOUT"),
    show_default=True,
    help="Seconds one upstream exchange may take, from the request to the answer's last byte (a stream's too); then 504.",
)
@click.option(
    "--stream-idle-timeout",
    type=float,
    default=300.0,
    envvar=_env("STREAM_IDLE_TIMEOUT"),
    show_default=True,
    help="Longest silence between two events of an upstream stream, in seconds (0: no limit besides --upstream-timeout).",
)
@click.option(
    "--max-response",
    type=int,
    default=128 * 1024 * 1024,
    envvar=_env("MAX_RESPONSE"),
    show_default=True,
    help="Biggest upstream answer in bytes once decoded (a stream's total too); a bigger one is a 502, never recorded.",
)
@click.option(
    "--max-stream-events",
    type=int,
    default=100_000,
    envvar=_env("MAX_STREAM_EVENTS"),
    show_default=True,
    help="Most events in one upstream stream; a longer one ends with an error event and is not recorded.",
)
@click.option(
    "--max-cassette-size",
    type=int,
    default=256 * 1024 * 1024,
    envvar=_env("MAX_CASSETTE_SIZE"),
    show_default=True,
    help="Biggest cassette file read, in bytes; a bigger one is refused with an error naming it.",
)
@click.option(
    "--max-header-size",
    type=int,
    default=64 * 1024,
    envvar=_env("MAX_HEADER_SIZE"),
    show_default=True,
    help="Biggest request head (request line and headers) in bytes; a bigger one is answered 431 and closed.",
)
@click.option(
    "--max-headers",
    type=int,
    default=128,
    envvar=_env("MAX_HEADERS"),
    show_default=True,
    help="Most headers in one request; more is answered 431.",
)
@click.option(
    "--max-sessions",
    type=int,
    default=10_000,
    envvar=_env("MAX_SESSIONS"),
    show_default=True,
    help="Sessions (x-seedtape-session values) whose episode counters are remembered; the least recently used are forgotten.",
)
@click.option(
    "--pace",
    type=click.Choice(["fast", "recorded"]),
    default="fast",
    envvar=_env("PACE"),
    show_default=True,
    help="Replayed streams: as fast as possible, or with the recorded gaps between events.",
)
@click.option(
    "--verify-serve",
    type=click.Choice(["live", "recorded"]),
    default="live",
    envvar=_env("VERIFY_SERVE"),
    show_default=True,
    help="verify: answer with the live response, or with the recording (the suite stays stable while drift is measured).",
)
@click.option("--update", is_flag=True, help="verify: re-record drifted episodes.")
@click.option("--ignore-path", "ignore_paths", multiple=True, help="verify: JSON path ignored when comparing (repeatable).")
@click.option(
    "--partition-by-credential",
    is_flag=True,
    envvar=_env("PARTITION_BY_CREDENTIAL"),
    help="Put a salted hash of the caller's API key in the key (shared deployments; never the key itself).",
)
@click.option("--max-age", "max_age_days", type=float, default=None, envvar=_env("MAX_AGE"), help="Days after which an episode is expired.")
@click.option(
    "--on-expired",
    type=click.Choice(["warn", "fail", "rerecord"]),
    default="warn",
    envvar=_env("ON_EXPIRED"),
    show_default=True,
    help="An episode older than --max-age: serve it with x-seedtape-expired, answer 410, or fetch and rewrite it.",
)
@click.option(
    "--fsync",
    type=click.Choice(FSYNC_POLICIES),
    default="background",
    envvar=_env("FSYNC"),
    show_default=True,
    help="When a recording is fsynced: just after its answer (it is already written whole and visible), or before it (survives a power cut the moment the client sees 'recorded').",
)
@click.option(
    "--auth-token",
    default="",
    envvar=_env("AUTH_TOKEN"),
    show_envvar=True,
    help="Clients must send this in the x-seedtape-token header (401 otherwise). Required for a non-loopback --host.",
)
@click.option("--insecure", is_flag=True, help="Allow a non-loopback --host without --auth-token.")
@click.option(
    "--redact",
    "redact_patterns",
    multiple=True,
    metavar="REGEX",
    help="Replace matches in stored request/response bodies with [REDACTED] (repeatable; matching is unaffected).",
)
@click.option(
    "--redact-path",
    "redact_paths",
    multiple=True,
    metavar="PATH",
    help="Replace this JSON path in stored bodies, e.g. messages.*.content or user (repeatable).",
)
@store_option
@namespace_option
@store_ttl_option
@store_timeout_option
@click.option(
    "--store-required",
    is_flag=True,
    envvar=_env("STORE_REQUIRED"),
    help="Answer 503 while the store is unreachable (default: serve locally).",
)
@click.option(
    "--realtime-audio",
    type=click.Choice(["keep", "hash"]),
    default="keep",
    envvar=_env("REALTIME_AUDIO"),
    show_default=True,
    help="Realtime sessions: store the service's audio deltas (a replay plays them), or only their SHA-256 and size (a replay sends silence). Client audio is always hashed.",
)
@click.option(
    "--log-level",
    default="info",
    envvar=_env("LOG_LEVEL"),
    show_default=True,
    help="Server log level (critical, error, warning, info, debug).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    envvar=_env("ACCESS_LOG"),
    show_default=True,
    help="A line per request (costs ~a quarter of replay throughput; every response's x-seedtape-* headers say what happened).",
)
def serve(
    host: str, port: int, workers: int, upstream: str | None, log_level: str, insecure: bool, access_log: bool, **options: object
) -> None:
    """Run the proxy: record, replay, verify or pass through OpenAI and Azure OpenAI requests."""
    from seedtape.commands import serve as serve_command
    from seedtape.security import bind_refusal, is_loopback

    refusal = bind_refusal(host, bool(options.get("auth_token")), insecure)
    if refusal:
        raise click.UsageError(refusal)
    if insecure and not options.get("auth_token") and not is_loopback(host):
        click.echo(f"warning: listening on {host} without --auth-token: anyone who reaches it can read the recordings", err=True)
    if workers < 1:
        raise click.BadParameter("must be at least 1", param_hint="--workers")
    if options.get("stream_idle_timeout") == 0:
        options["stream_idle_timeout"] = None
    try:
        settings = Settings(upstream=upstream or default_upstream(), workers=workers, **options)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    # One session id for the whole run, chosen here so every worker shares it.
    settings = settings.with_(session=os.urandom(6).hex())
    click.echo(
        f"seedtape {__version__}: {settings.mode} mode on http://{host}:{port}, upstream {settings.upstream}, "
        f"cassettes {settings.cassettes_dir}/{settings.cassette}" + _store_banner(settings),
        err=True,
    )
    serve_command.serve(settings, host=host, port=port, log_level=log_level, access_log=access_log)


def _store_banner(settings: Settings) -> str:
    if not settings.store:
        return ""
    from seedtape.teams.url import masked

    return f", shared store {masked(settings.store)} namespace {settings.namespace}"


@main.group()
def sync() -> None:
    """Teams: the shared store's recordings into cassette files (pull), or files into the store (push)."""


def _sync_command(direction: str) -> Callable[..., None]:
    @store_option
    @namespace_option
    @store_timeout_option
    @cassettes_option
    @click.option("--cassette", default=None, help="Only this cassette.")
    def command(store: str, namespace: str, store_timeout: float, cassettes_dir: Path, cassette: str | None, **extra: object) -> None:
        from seedtape.commands.sync import SyncError, run_sync

        try:
            result = run_sync(direction, store, namespace, cassettes_dir, cassette, timeout=store_timeout, **extra)  # type: ignore[arg-type]
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        except SyncError as exc:
            raise click.ClickException(str(exc)) from exc
        for line in result.problems:
            click.echo(line, err=True)
        click.echo(result.summary())
        sys.exit(0 if result.ok else 1)

    return command


sync.command(
    "pull", help="Write the namespace's recordings into cassette files to commit (local episodes win; the team's are added after them)."
)(_sync_command("pull"))
sync.command("push", help="Publish the cassette files to the namespace (the team's extra episodes are kept).")(
    store_ttl_option(_sync_command("push"))
)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8788, show_default=True)
@click.option("--fingerprint", default="fp_sim0001", show_default=True)
@click.option("--seed-drift", type=float, default=0.0, show_default=True, help="Chance a seeded answer still differs.")
@click.option("--stream-delay-ms", type=float, default=0.0, show_default=True)
def sim(host: str, port: int, fingerprint: str, seed_drift: float, stream_delay_ms: float) -> None:
    """Run the built-in Azure-compatible upstream simulator on its own port."""
    import uvicorn

    from seedtape.sim.simulator import SimConfig, create_simulator

    simulator = create_simulator(SimConfig(fingerprint=fingerprint, seed_drift=seed_drift, stream_delay_ms=stream_delay_ms))
    uvicorn.run(simulator.app, host=host, port=port, log_level="warning")


@main.command("ls")
@cassettes_option
@click.option("--cassette", default=None, callback=_cassette_name, help="Only this cassette.")
@click.option("--limit", type=int, default=200, show_default=True, help="Rows shown at most; the rest is summarised.")
def ls_command(cassettes_dir: Path, cassette: str | None, limit: int) -> None:
    """List recordings: api, deployment or model, route, seed, temperature, episodes, age and the question asked."""
    from seedtape.commands.listing import print_listing

    print_listing(cassettes_dir, cassette, limit)


@main.command()
@click.argument("key")
@cassettes_option
def show(key: str, cassettes_dir: Path) -> None:
    """Show one recording (by key or key prefix): the request and every episode."""
    from seedtape.commands.listing import print_recording

    if not re.fullmatch(r"[0-9a-fA-F]{1,64}", key):
        raise click.BadParameter(f"{key[:70]!r} is not a key: give its hex digits (a prefix is enough)", param_hint="KEY")
    key = key.lower()
    sys.exit(print_recording(cassettes_dir, key))


@main.command("import-vcr")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@cassettes_option
@click.option(
    "--cassette",
    default=None,
    callback=_cassette_name,
    help="Put everything in this cassette (default: one per vcr file, named by its stem).",
)
@click.option("--skip-errors", is_flag=True, help="Do not import recorded non-2xx answers.")
@click.option("--ignore-field", "ignore_fields", multiple=True, help="Same as serve --ignore-field, so keys match.")
def import_vcr(
    paths: tuple[Path, ...], cassettes_dir: Path, cassette: str | None, skip_errors: bool, ignore_fields: tuple[str, ...]
) -> None:
    """Import vcrpy cassettes (every dialect seen in the wild) as seedtape recordings."""
    from seedtape.cassette import InvalidCassetteName
    from seedtape.commands.vcr_import import import_paths

    try:
        report = import_paths(list(paths), cassettes_dir, cassette, record_errors=not skip_errors, ignore_fields=ignore_fields)
    except InvalidCassetteName as exc:
        raise click.BadParameter(str(exc), param_hint="--cassette") from exc
    click.echo(report.summary())
    sys.exit(0 if report.ok else 1)


@main.command()
@click.option(
    "--log", "log_path", type=click.Path(path_type=Path), default=None, help="Drift log to read (default: <cache-dir>/drift.jsonl)."
)
@click.option("--cache-dir", type=click.Path(path_type=Path), default=Path(".seedtape-cache"), envvar=_env("CACHE_DIR"), show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "junit", "html"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Write the report to this file.")
@click.option(
    "--fail-on",
    multiple=True,
    help="content, variety, fingerprint, model, unrecorded or any (any flag but variety); repeatable or a comma list: exit 1 when matched.",
)
@click.option("--worst", type=int, default=10, show_default=True, help="table: how many of the worst drifts to show.")
@store_option
@namespace_option
@store_timeout_option
def report(
    log_path: Path | None,
    cache_dir: Path,
    fmt: str,
    output: Path | None,
    fail_on: tuple[str, ...],
    worst: int,
    store: str,
    namespace: str,
    store_timeout: float,
) -> None:
    """Render the drift log of verify runs: terminal table, JSON, JUnit XML or HTML (--store: the team's)."""
    from seedtape.drift import log as drift_log
    from seedtape.drift.report import exit_code, parse_fail_on, render

    try:
        rules = parse_fail_on(fail_on)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fail-on") from exc
    if store:
        from seedtape.commands.sync import SyncError, read_team_drift

        try:
            source, entries = read_team_drift(store, namespace, store_timeout)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        except SyncError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        path = log_path or cache_dir / "drift.jsonl"
        source, entries = str(path), drift_log.read(path)
    if not entries:
        click.echo(f"no verified requests in {source} (run the proxy with --mode verify first)", err=True)
    color = output is None and fmt == "table" and sys.stdout.isatty()
    text = render(entries, fmt, rules, color=color, worst=worst)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {fmt} report of {len(entries)} verified request(s) to {output}", err=True)
    else:
        click.echo(text)
    sys.exit(exit_code(entries, rules))


@main.group(invoke_without_command=True)
@click.option(
    "--upstream",
    default=None,
    envvar=_env("UPSTREAM"),
    help="Service (or a seedtape proxy) to probe; 'sim' for the built-in simulator. Default: $AZURE_OPENAI_ENDPOINT, else OpenAI.",
)
@click.option("--api", type=click.Choice(["azure", "openai"]), default=None, help="Default: azure unless the upstream is the OpenAI API.")
@click.option("--model", default="gpt-4", show_default=True, help="Model, or Azure deployment name.")
@click.option("--api-version", default="2024-02-01", show_default=True, help="Azure api-version of the chat arms.")
@click.option("-n", "--runs", "n", type=int, default=10, show_default=True, help="Requests per arm and prompt (the N of TARr@N).")
@click.option("--seed", type=int, default=42, show_default=True, help="The seed of the seeded arms.")
@click.option("--temperature", type=float, default=0.7, show_default=True, help="Temperature of the unseeded and seeded arms.")
@click.option(
    "--max-tokens",
    type=int,
    multiple=True,
    help="Answer lengths of the default arms (repeatable; default 50 and 500: longer answers drift more).",
)
@click.option(
    "--arm",
    "arms",
    multiple=True,
    metavar="KIND[/MAX_TOKENS]",
    help="Only these arms (repeatable): unseeded, seeded, t0 (temperature 0, no seed), responses-t0 (Responses API).",
)
@click.option(
    "--responses/--no-responses", default=True, show_default=True, help="Add the Responses API arm (temperature 0; it has no seed)."
)
@click.option("--responses-api-version", default="2025-04-01-preview", show_default=True, help="Azure api-version of the Responses arm.")
@click.option("--system", default=None, help="System message (default: the Azure page's 'You are a helpful assistant.').")
@click.option(
    "--prompt", "prompts", multiple=True, help="User message (repeatable: TARr@N is then a share of prompts). Default: the universe story."
)
@click.option(
    "--prompts-file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None, help="More prompts, one per line."
)
@click.option("--answer-regex", default=None, metavar="REGEX", help="Parse the answer (first group, else the match) for TARa@N.")
@click.option("--answer-json-path", default=None, metavar="PATH", help="Parse the answer as JSON and take this dotted path, for TARa@N.")
@click.option(
    "--sim-seed-drift", type=float, default=0.0, show_default=True, help="sim only: chance a seeded 50-word answer still differs."
)
@click.option(
    "--sim",
    "sim_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="sim only: simulator setting (repeatable): seed_drift, greedy_drift, drift_prefix, fingerprint_every, fingerprint, entropy_seed, ...",
)
@click.option("--history", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Append this run to a JSON Lines history.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def probe(
    ctx: click.Context,
    upstream: str | None,
    api: str | None,
    model: str,
    api_version: str,
    n: int,
    seed: int,
    temperature: float,
    max_tokens: tuple[int, ...],
    arms: tuple[str, ...],
    responses: bool,
    responses_api_version: str,
    system: str | None,
    prompts: tuple[str, ...],
    prompts_file: Path | None,
    answer_regex: str | None,
    answer_json_path: str | None,
    sim_seed_drift: float,
    sim_options: tuple[str, ...],
    history: Path | None,
    as_json: bool,
) -> None:
    """Measure how reproducible answers are: N runs per arm (no seed, seed, temperature 0, Responses API).

    `seedtape probe report FILE` draws a --history file over time.
    """
    if ctx.invoked_subcommand is not None:
        return
    from seedtape.commands.probe import run_probe_command

    try:
        text = run_probe_command(
            upstream=upstream or default_upstream(),
            api=api,
            model=model,
            api_version=api_version,
            n=n,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            arms=arms,
            responses=responses,
            responses_api_version=responses_api_version,
            system=system,
            prompts=prompts,
            prompts_file=prompts_file,
            answer_regex=answer_regex,
            answer_json_path=answer_json_path,
            sim_seed_drift=sim_seed_drift,
            sim=sim_options,
            history=history,
            as_json=as_json,
        )
    except (ValueError, re.error) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(text)


@probe.command("report")
@click.argument("history", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Write the report to this file.")
def probe_report(history: Path, fmt: str, output: Path | None) -> None:
    """Draw a probe --history file: reproducibility over time per model and fingerprint."""
    from seedtape.commands.probe import read_history
    from seedtape.commands.probe_report import render

    runs = read_history(history)
    if not runs:
        click.echo(f"no probe runs in {history} (run seedtape probe --history {history} first)", err=True)
    text = render(runs, fmt, color=output is None and fmt == "table" and sys.stdout.isatty())
    if output is not None:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {fmt} report of {len(runs)} probe run(s) to {output}", err=True)
    else:
        click.echo(text)


@main.command()
@click.option("--keep", type=click.Path(path_type=Path), default=None, help="Keep the demo's cassettes in this folder.")
def demo(keep: Path | None) -> None:
    """Run the seed documents' scenarios end to end (simulator upstream, real openai SDK)."""
    from seedtape.commands.demo import run_demo

    run_demo(keep)


@main.command()
@click.option("--unused", is_flag=True, help="Remove the recordings the last --seedtape-report-unused run listed.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    default=Path(".seedtape-cache") / "unused.json",
    show_default=True,
    help="The unused-recordings report written by the pytest plugin.",
)
@cassettes_option
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.pass_context
def prune(ctx: click.Context, unused: bool, report_path: Path, cassettes_dir: Path, dry_run: bool) -> None:
    """Remove unused recordings (what `pytest --seedtape-report-unused` listed)."""
    from seedtape.commands.prune import prune_unused, read_report

    if not unused:
        raise click.UsageError("say what to prune: --unused")
    try:
        report = read_report(report_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if ctx.get_parameter_source("cassettes_dir") in (None, click.core.ParameterSource.DEFAULT):
        cassettes_dir = Path(report.get("cassettes_dir") or cassettes_dir)
    result = prune_unused(cassettes_dir, report_path, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for path in result.removed:
        click.echo(f"{verb} {path}")
    for label in result.changed:
        click.echo(f"kept {label}: it no longer holds the listed key", err=True)
    click.echo(
        f"{verb} {len(result.removed)} unused recording(s) from {cassettes_dir}"
        + (f"; {len(result.missing)} listed were already gone" if result.missing else "")
    )


if __name__ == "__main__":  # pragma: no cover
    main()
