"""The ``parley ask`` and ``parley talk`` commands (registered in ``parley.cli``); heavy imports stay inside."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

# Options both clients share; --url takes http(s)://host:port[/v1] or the ws(s)://.../v1/realtime URL.
UrlOption = Annotated[str, typer.Option(help="The server (Parley or any Realtime API server)")]
KeyOption = Annotated[str | None, typer.Option(help="API key, when the server requires one")]
ModelOption = Annotated[str, typer.Option(help="Model to ask for (Parley serves its own whatever the name)")]
VoiceOption = Annotated[str | None, typer.Option(help="Voice, e.g. alloy, ash, marin [default: the server's]")]
InstructionsOption = Annotated[str | None, typer.Option(help="Instructions [default: the server's]")]
MaxTokensOption = Annotated[int | None, typer.Option(min=1, help="Longest answer, in tokens")]


def ask(
    file: Annotated[Path, typer.Argument(help="The question: WAV, FLAC, MP3 or Ogg, any sample rate")],
    out: Annotated[Path | None, typer.Option(help="Save the spoken answer here (WAV, 24 kHz)")] = None,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = "gpt-realtime",
    voice: VoiceOption = None,
    instructions: InstructionsOption = None,
    max_output_tokens: MaxTokensOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text")] = False,
    timeout_s: Annotated[float, typer.Option(min=1, help="Give up after this many seconds")] = 120.0,
) -> None:
    """Send a recording, print its transcript and the answer, save the spoken answer."""
    from . import ask as asking
    from .endpoint import connection_problem, realtime_client
    from .settings import voice_session

    try:
        samples = asking.read_recording(file)
        client = realtime_client(url, api_key)
    except (OSError, RuntimeError, ValueError) as exc:  # soundfile's errors are RuntimeErrors
        typer.echo(f"parley ask: {exc}", err=True)
        raise typer.Exit(2) from None
    session = voice_session(voice=voice, instructions=instructions, max_output_tokens=max_output_tokens)
    try:
        answer = asyncio.run(asyncio.wait_for(asking.ask(client, model, samples, session), timeout_s))
    except Exception as exc:
        reason = connection_problem(exc) or str(exc) or type(exc).__name__
        typer.echo(f"parley ask: {reason}", err=True)
        raise typer.Exit(1) from None
    audio = answer.audio_samples()
    if out is not None and len(audio):
        asking.write_answer(out, audio)
    if json_output:
        result = {
            "transcript": answer.transcript,
            "answer": answer.text,
            "status": answer.status,
            "audio_seconds": round(len(audio) / asking.RATE, 3),
            "out": str(out) if out is not None and len(audio) else None,
            "usage": answer.usage,
        }
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        typer.echo(f"You: {answer.transcript if answer.transcript is not None else '(no transcript)'}")
        typer.echo(f"Parley: {answer.text}")
    if out is not None and not len(audio):
        typer.echo("parley ask: the answer had no audio; nothing was saved", err=True)


def talk(
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = None,
    model: ModelOption = "gpt-realtime",
    voice: VoiceOption = None,
    instructions: InstructionsOption = None,
    max_output_tokens: MaxTokensOption = None,
    turn_detection: Annotated[
        str, typer.Option(help="server_vad (a pause ends your turn) or semantic_vad (Smart Turn decides)")
    ] = "server_vad",
    input_device: Annotated[str | None, typer.Option(help="Microphone: number or name (python -m sounddevice)")] = None,
    output_device: Annotated[str | None, typer.Option(help="Speaker: number or name")] = None,
) -> None:
    """Talk with the server through this machine's microphone and speakers."""
    import sys

    from .audio_io import NoAudioDevice, SoundDevice
    from .endpoint import connection_problem, realtime_client
    from .settings import voice_session
    from .talk import talk as converse

    try:
        client = realtime_client(url, api_key)
    except ValueError as exc:
        typer.echo(f"parley talk: {exc}", err=True)
        raise typer.Exit(2) from None
    session = voice_session(
        voice=voice, instructions=instructions, max_output_tokens=max_output_tokens, turn_detection=turn_detection
    )

    def device_id(value: str | None) -> int | str | None:
        return int(value) if value is not None and value.isdigit() else value

    async def run() -> None:
        device = SoundDevice(device_id(input_device), device_id(output_device))
        typer.echo(
            "Speak now; speak over an answer to interrupt it; Ctrl+C ends. "
            "(Headphones help: without echo cancellation Parley can hear itself.)",
            err=True,
        )
        try:
            await converse(client, model, device, session, sys.stdout)
        finally:
            await device.close()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        typer.echo("", err=True)
    except NoAudioDevice as exc:
        typer.echo(f"parley talk: {exc}. `parley ask FILE.wav` works without audio devices.", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        reason = connection_problem(exc)
        if reason is None:
            raise
        typer.echo(f"parley talk: {reason}", err=True)
        raise typer.Exit(1) from None
