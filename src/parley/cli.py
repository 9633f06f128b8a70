"""The ``parley`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast, get_args

import typer
import uvicorn

from . import models
from .bench.dialects import DialectName, TurnDetection
from .clients import commands as client_commands
from .config import PROFILE_LLMS, Profile, RecognizerName, Settings
from .ops import cli as ops_cli

if TYPE_CHECKING:
    from .bench.recordings import Utterance

app = typer.Typer(
    help="Parley: a self-hosted realtime voice AI speaking the OpenAI Realtime API.", no_args_is_help=True
)
models_app = typer.Typer(help="Model weights: list them, prepare them ahead of the first start.")
app.add_typer(models_app, name="models")
bench_app = typer.Typer(help="Measure a Realtime server (Parley or any compatible one) as a client would.")
app.add_typer(bench_app, name="bench")
app.add_typer(ops_cli.keys_app, name="keys")
app.add_typer(ops_cli.sessions_app, name="sessions")
app.command("usage")(ops_cli.usage_command)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: 8000]")] = None,
    profile: Annotated[Profile | None, typer.Option(help="Model profile: fast (English) or default")] = None,
    recognizer: Annotated[
        RecognizerName | None, typer.Option(help="Speech recognizer [default: the profile's]")
    ] = None,
    synthesizer: Annotated[
        list[str] | None,
        typer.Option(help="Speech synthesizer (piper, kokoro, espeak), in order of preference; repeatable"),
    ] = None,
    llm: Annotated[str | None, typer.Option(help="Language model: catalog name, source or GGUF path")] = None,
    llm_base_url: Annotated[str | None, typer.Option(help="Use this OpenAI-compatible endpoint as the LLM")] = None,
    llm_model: Annotated[str | None, typer.Option(help="Model name at --llm-base-url")] = None,
    llm_api_key: Annotated[str | None, typer.Option(help="Key for --llm-base-url")] = None,
    api_key: Annotated[list[str] | None, typer.Option(help="Accept this client key (repeatable)")] = None,
    allow_insecure_public_bind: Annotated[
        bool, typer.Option(help="Allow listening beyond loopback without API keys")
    ] = False,
    max_session_minutes: Annotated[float | None, typer.Option(help="Maximum session length")] = None,
    knowledge: Annotated[
        list[str] | None,
        typer.Option(help="Ground answers in this fact sheet (.md, .csv, .jsonl): PATH or NAME=PATH (repeatable)"),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="postgresql://user:password@host/db [default: SQLite under the data folder]")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder [default: ~/.local/share/parley]")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Start the Realtime API server."""
    flags = {
        "host": host,
        "port": port,
        "profile": profile,
        "recognizer": recognizer,
        "synthesizers": synthesizer or None,
        "llm": llm,
        "llm_base_url": llm_base_url,
        "llm_model": llm_model,
        "llm_api_key": llm_api_key,
        "api_keys": api_key or None,
        "allow_insecure_public_bind": allow_insecure_public_bind or None,
        "max_session_minutes": max_session_minutes,
        "knowledge": knowledge or None,
        "database_url": database_url,
        "data_dir": data_dir,
    }
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .storage import StorageUnavailable, open_storage, transcripts

    try:  # a pydantic ValidationError is a ValueError: a bad flag or PARLEY_ variable says which, without a trace
        settings = Settings(**{name: value for name, value in flags.items() if value is not None})
        # Before binding: a database that is down, or newer than this code, stops the start with the reason.
        storage = open_storage(settings.database_url, settings.data_dir)
        settings.check_bind(stored_keys=storage.keys.any_usable())
        # Sessions a killed run of this server left open are closed (their items and usage are all there).
        from .app import server_name

        longest = settings.max_session_minutes * 60 + 60
        closed = transcripts.recover(storage.engine, server_name(settings), time.time() - longest)
    except (ValueError, StorageUnavailable) as exc:
        typer.echo(f"parley: {exc}", err=True)
        raise typer.Exit(2) from None
    log = logging.getLogger("parley")
    log.info("storage: %s%s", storage.description, f" ({closed} sessions left open were closed)" if closed else "")

    from .knowledge import KnowledgeError, load_library

    try:  # before binding: a bad fact sheet stops the start with the reason, not a half-working server
        library = load_library(settings.knowledge, settings.knowledge_top_k)
    except KnowledgeError as exc:
        typer.echo(f"parley: {exc}", err=True)
        raise typer.Exit(2) from None
    for base in library.bases.values():
        log.info("knowledge %s: %d facts from %s", base.name, len(base.facts), base.path)

    from .app import create_app

    uvicorn.run(
        create_app(settings, storage, library),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        ws_max_size=settings.max_event_bytes * 2,
    )


@models_app.command("list")
def list_models() -> None:
    """List the built-in models and the profiles that use them."""
    for name, spec in models.CATALOG.items():
        profiles = [p for p, llm in PROFILE_LLMS.items() if llm == name]
        typer.echo(f"{name:32} {', '.join(profiles) or '-':10} {spec.description}")


@models_app.command("prepare")
def prepare(
    name: Annotated[list[str] | None, typer.Argument(help="Catalog names [default: every built-in model]")] = None,
) -> None:
    """Join split weights, verify them and convert them where the catalog says, so the first start is quick."""
    from .engines.llama_weights import local_weights

    for model in name or list(models.CATALOG):
        typer.echo(f"{model}: {local_weights(model)}")


@bench_app.command("text")
def bench_text(
    url: Annotated[str, typer.Option(help="Realtime WebSocket URL")] = "ws://127.0.0.1:8000/v1/realtime",
    runs: Annotated[int, typer.Option(min=1, help="Questions per series")] = 10,
    api_key: Annotated[str | None, typer.Option(help="Key, when the server requires one")] = None,
    label: Annotated[str, typer.Option(help="Row label for the Markdown table")] = "series",
    json_out: Annotated[Path | None, typer.Option(help="Write the full results here as JSON")] = None,
) -> None:
    """Time to first text delta, prompt cache cold and warm."""
    from .bench import text_latency

    series = asyncio.run(text_latency.run(url, runs, api_key))
    typer.echo(text_latency.markdown(label, series))
    if json_out is not None:
        json_out.write_text(json.dumps(text_latency.report(series), indent=2) + "\n")


@bench_app.command("voice")
def bench_voice(
    url: Annotated[str, typer.Option(help="Realtime WebSocket URL (Parley or any compatible server)")] = (
        "ws://127.0.0.1:8000/v1/realtime"
    ),
    dialect: Annotated[DialectName, typer.Option(help="Protocol dialect to speak")] = "ga",
    api_key: Annotated[str | None, typer.Option(help="Key, when the server requires one")] = None,
    speech: Annotated[
        list[str] | None,
        typer.Option(
            help="Folder with a manifest.jsonl (or the manifest itself, or the name of a shared speech folder); "
            "repeatable [default: commands_en, ljspeech_en, pocketsphinx_en]"
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Measure only the first N utterances in all")] = None,
    silence_ms: Annotated[int, typer.Option(min=0, help="server_vad silence_duration_ms that ends a turn")] = 200,
    turn_detection: Annotated[TurnDetection, typer.Option(help="Turn detection asked of the server")] = "server_vad",
    concurrency: Annotated[int, typer.Option(min=1, help="Sessions at once, their turns staggered")] = 1,
    turns_per_session: Annotated[
        int, typer.Option(min=0, help="Utterances per session, one after another (0: all of a lane's)")
    ] = 1,
    max_output_tokens: Annotated[
        int, typer.Option(min=0, help="Cap on each answer's tokens, as a voice agent sets one (0: none)")
    ] = 100,
    timeout_s: Annotated[float, typer.Option(min=1, help="Give up on an answer this long after the speech")] = 30.0,
    timings: Annotated[bool, typer.Option(help="Ask Parley for its per-turn timings (?parley_timings=true)")] = True,
    label: Annotated[str, typer.Option(help="Name of this run in tables and charts")] = "voice",
    out: Annotated[Path | None, typer.Option(help="Write results.json, results.md and latency.png here")] = None,
) -> None:
    """Voice-to-voice latency, its split by stage and transcript word error rate: real recordings streamed at
    real-time pace in 20 ms frames."""
    from .bench import chart, recordings, voice_latency, voice_report
    from .bench.progress import TurnProgress

    sources = [recordings.speech_source(name) for name in speech] if speech else recordings.default_sources()
    try:
        utterances = recordings.load_utterances(sources)[:limit]
        prepared = [recordings.prepare(u) for u in utterances]
    except (OSError, ValueError) as exc:
        typer.echo(f"parley: {exc}", err=True)
        raise typer.Exit(2) from None
    options = voice_latency.Options(
        url=url,
        dialect=dialect,
        api_key=api_key,
        silence_ms=silence_ms,
        turn_detection=turn_detection,
        concurrency=concurrency,
        turns_per_session=turns_per_session,
        max_output_tokens=max_output_tokens or None,
        timeout_s=timeout_s,
        timings=timings,
    )
    with TurnProgress(len(prepared), label) as progress:
        run = asyncio.run(voice_latency.run(prepared, options, on_turn=progress.turn_done))
    data = voice_report.report(run, label, [recordings.source_label(source) for source in sources])
    table = voice_report.markdown(data)
    typer.echo(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
        (out / "results.md").write_text(table)
        chart.write([data], out / "latency.png")
    if prepared and not data["summary"]["completed"]:
        raise typer.Exit(1)


@bench_app.command("recognizers")
def bench_recognizers(
    recognizer: Annotated[
        list[str] | None, typer.Option(help="Recognizer to measure; repeatable [default: all]")
    ] = None,
    speech: Annotated[
        list[str] | None,
        typer.Option(help="Speech folder, its manifest or a shared folder's name; repeatable [default: all shared]"),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N utterances of each folder")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads per recognizer [default: the server's]")] = None,
    json_out: Annotated[Path | None, typer.Option(help="Write the results here as JSON")] = None,
) -> None:
    """Word error rate, detected language and time per clip of the speech recognizers, in this process."""
    from .bench import recognizers
    from .engines.recognizers import RECOGNIZERS

    unknown = sorted(set(recognizer or ()) - set(RECOGNIZERS))
    if unknown:
        expected = ", ".join(RECOGNIZERS)
        typer.echo(f"parley: unknown recognizer {', '.join(unknown)}; expected one of {expected}", err=True)
        raise typer.Exit(2)
    utterances = _each_folders_utterances(speech, limit)
    results = recognizers.run(
        recognizer or list(RECOGNIZERS), utterances, threads, on_clip=lambda line: typer.echo(line, err=True)
    )
    typer.echo(recognizers.markdown(results))
    if json_out is not None:
        json_out.write_text(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False) + "\n")


@bench_app.command("synthesizers")
def bench_synthesizers(
    profile: Annotated[
        list[str] | None, typer.Option(help="Profile whose voices to measure; repeatable [default: fast, default]")
    ] = None,
    voice: Annotated[str, typer.Option(help="OpenAI voice name, mapped as sessions map it")] = "alloy",
    speech: Annotated[
        list[str] | None,
        typer.Option(help="Speech folder, its manifest or a shared folder's name; repeatable [default: all shared]"),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N transcripts of each folder")] = None,
    json_out: Annotated[Path | None, typer.Option(help="Write the results here as JSON")] = None,
) -> None:
    """Time to synthesize an answer's first piece, and real-time factor, of each profile's voices, in this process."""
    from .bench import synthesizers

    unknown = sorted(set(profile or ()) - set(get_args(Profile)))
    if unknown:
        expected = ", ".join(get_args(Profile))
        typer.echo(f"parley: unknown profile {', '.join(unknown)}; expected one of {expected}", err=True)
        raise typer.Exit(2)

    utterances = _each_folders_utterances(speech, limit)
    profiles = cast(list[Profile], profile or list(get_args(Profile)))
    results = synthesizers.run(profiles, utterances, voice, on_text=lambda line: typer.echo(line, err=True))
    typer.echo(synthesizers.markdown(results))
    if json_out is not None:
        json_out.write_text(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False) + "\n")


@bench_app.command("llm")
def bench_llm(
    model: Annotated[
        list[str] | None, typer.Option(help="Catalog model to measure; repeatable [default: both profiles' models]")
    ] = None,
    prompt_tokens: Annotated[int, typer.Option(min=1, help="Tokens in the prompt read")] = 128,
    decode_tokens: Annotated[int, typer.Option(min=1, help="Tokens written after it")] = 64,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per model, after one warm-up")] = 5,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads [default: as the server runs it]")] = None,
    json_out: Annotated[Path | None, typer.Option(help="Write the results here as JSON")] = None,
) -> None:
    """Prompt reading and token writing speed of the local language models with this llama.cpp build, in this
    process (PARLEY_LLAMA_CPU_VARIANT picks a CPU variant)."""
    from .bench import llm_speed

    names = model or list(dict.fromkeys(PROFILE_LLMS.values()))
    results = llm_speed.run(
        names, prompt_tokens, decode_tokens, repeats, threads, on_run=lambda line: typer.echo(line, err=True)
    )
    typer.echo(llm_speed.markdown(results))
    if json_out is not None:
        json_out.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")


def _each_folders_utterances(speech: list[str] | None, limit: int | None) -> list[Utterance]:
    """The first ``limit`` utterances of each speech folder named (default: every shared one); exits 2 when a
    folder cannot be read or none holds any."""
    from .bench import recordings

    sources = [recordings.speech_source(name) for name in speech] if speech else recordings.shared_sources()
    try:
        utterances = [u for source in sources for u in recordings.load_utterances([source])[:limit]]
    except (OSError, ValueError) as exc:
        typer.echo(f"parley: {exc}", err=True)
        raise typer.Exit(2) from None
    if not utterances:
        typer.echo("parley: no utterances in " + ", ".join(map(str, sources)), err=True)
        raise typer.Exit(2)
    return utterances


@bench_app.command("compare")
def bench_compare(
    results: Annotated[list[Path], typer.Argument(help="results.json files of `parley bench voice --out`")],
    out: Annotated[Path | None, typer.Option(help="Write comparison.md and comparison.png here")] = None,
) -> None:
    """Side by side: the headline figures and the per-stage split of several voice runs, in one table and chart."""
    from .bench import chart, voice_report

    runs = [json.loads(path.read_text()) for path in results]
    table = voice_report.comparison(runs)
    typer.echo(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.md").write_text(table)
        chart.write(runs, out / "comparison.png")


# The two clients: `parley ask FILE` and `parley talk`.
app.command()(client_commands.ask)
app.command()(client_commands.talk)


@bench_app.command("grounding")
def bench_grounding(
    facts: Annotated[Path, typer.Option(help="The fact sheet the server was started with (--knowledge)")],
    questions: Annotated[Path, typer.Option(help="Questions (JSON Lines: question, language, fact_id, key)")],
    url: Annotated[str, typer.Option(help="Realtime WebSocket URL")] = "ws://127.0.0.1:8000/v1/realtime",
    top_k: Annotated[int, typer.Option(min=1, help="Facts the server retrieves per turn (its knowledge_top_k)")] = 5,
    no_knowledge: Annotated[bool, typer.Option(help="Ask with no knowledge base, as a baseline")] = False,
    max_output_tokens: Annotated[int, typer.Option(min=1, help="Answer length cap")] = 60,
    api_key: Annotated[str | None, typer.Option(help="Key, when the server requires one")] = None,
    label: Annotated[str, typer.Option(help="Label for the Markdown table")] = "grounding",
    json_out: Annotated[Path | None, typer.Option(help="Write the full results here as JSON")] = None,
) -> None:
    """Retrieval and answer hit rates of knowledge grounding on a question set."""
    from .bench import grounding

    asked = grounding.load_questions(questions)

    def progress(result: grounding.Result) -> None:
        mark = "+" if result.answer_hit else "-"
        typer.echo(f"{mark} {result.question} -> {result.answer!r} {result.error or ''}", err=True)

    results = asyncio.run(
        grounding.run(
            url, facts, asked, top_k, grounded=not no_knowledge, max_output_tokens=max_output_tokens,
            api_key=api_key, on_result=progress,
        )
    )  # fmt: skip
    typer.echo(grounding.markdown(label, results))
    if json_out is not None:
        settings = {"url": url, "facts": facts.name, "questions": questions.name, "top_k": top_k,
                    "grounded": not no_knowledge, "max_output_tokens": max_output_tokens,
                    "instructions": grounding.DEFAULT_INSTRUCTIONS}  # fmt: skip
        json_out.write_text(json.dumps(grounding.report(results, settings), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    app()
