"""Knowledge grounding: fact sheet shapes, bad files, retrieval ranking, the context the model reads, and a
real server (default profile) answering from a fact only the sheet holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from parley.bench.grounding import answer_hit, load_questions
from parley.knowledge import Fact, KnowledgeError, load_facts, load_library, parse_spec
from parley.knowledge.index import FactIndex, match_query
from parley.realtime.context import FACTS_PREAMBLE, build_messages
from parley.realtime.conversation import chat_messages
from parley.realtime.items import ContentPart, Item
from tests.conftest import BAKERY_FACTS, CLINIC_FACTS
from tests.support.client import connect, response_text, user_text
from tests.support.server import RunningServer, free_port

QUESTIONS = CLINIC_FACTS.parent / "questions.jsonl"
INSTRUCTIONS = "You are the phone assistant of Larkspur Health. Answer in one short sentence."


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# --- file shapes -------------------------------------------------------------------------------------------


def test_markdown_paragraphs_items_table_rows_under_headings() -> None:
    facts = load_facts(BAKERY_FACTS)
    rendered = [fact.render() for fact in facts]
    assert rendered[0] == (
        "Boulangerie Étoile: A family bakery in the old town of Corrin, run by Margaux Quenneville since 2009."
    )
    assert "Boulangerie Étoile / Opening hours: Closed on Mondays." in rendered
    assert "Boulangerie Étoile / Prices: item: croissant au beurre; price: €1.60" in rendered
    assert "item: item" not in " ".join(rendered)  # the table's header row is no fact
    # A heading that asks a question: the text under it is its answer.
    assert (
        "Boulangerie Étoile / Do you make gluten-free bread? Yes, a buckwheat loaf on Fridays only; "
        "order it by Thursday noon." in rendered
    )
    assert len(facts) == 10
    assert facts[0].id == "L3"  # the line it starts on


def test_csv_fact_and_question_answer_shapes(tmp_path: Path) -> None:
    facts = load_facts(_write(tmp_path, "a.csv", "\ufeffid,topic,fact,notes\nf1,Parking,  Free after 6 pm. ,x\n,,,\n"))
    assert facts == [Fact("f1", "Free after 6 pm.", "Parking")]
    qa = load_facts(_write(tmp_path, "b.csv", 'question;answer\n"Do you take cash?";"No; cards only."\n'))
    assert qa == [Fact("L2", "No; cards only.", "Do you take cash?")]
    assert qa[0].render() == "Do you take cash? No; cards only."
    tabbed = load_facts(_write(tmp_path, "c.csv", "text\ttopic\nOpen daily.\tHours\n"))
    assert tabbed == [Fact("L2", "Open daily.", "Hours")]


def test_jsonl_shapes(tmp_path: Path) -> None:
    lines = [
        {"fact": "The lobby opens at 7.", "id": "lobby"},
        {},
        {"question": "Is there wifi?", "answer": "Yes, Guest-5G.", "topic": "Amenities"},
        {"text": 42},
    ]
    path = _write(tmp_path, "a.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    assert load_facts(path) == [
        Fact("lobby", "The lobby opens at 7."),
        Fact("L3", "Yes, Guest-5G.", "Amenities / Is there wifi?"),
        Fact("L4", "42"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.md", "", "empty.md: no facts found"),
        ("headings.md", "# Title\n\n## Section\n", "headings.md: no facts found"),
        ("blank.jsonl", "\n  \n", "blank.jsonl: no facts found"),
        ("header.csv", "fact\n", "header.csv: no facts found"),
        ("columns.csv", "name,price\nbread,2\n", "columns.csv:1: the header needs a 'fact'"),
        ("quote.csv", 'fact\nok\n"never closed\nmore\n', "quote.csv:3: malformed CSV"),
        ("cells.csv", "fact\nok\n a, b\n", "cells.csv:3: more cells than the header"),
        ("qa.csv", "question,answer\nWhy?,\n", "qa.csv:2: a question needs an answer"),
        ("bad.jsonl", '{"fact": "ok"}\n{"fact": "no end"\n', "bad.jsonl:2: not valid JSON"),
        ("list.jsonl", '["a fact"]\n', "list.jsonl:1: expected a JSON object"),
        ("nested.jsonl", '{"fact": {"x": 1}}\n', "nested.jsonl:1: expected text, got dict"),
        ("keys.jsonl", '{"name": "x"}\n', "keys.jsonl:1: no 'fact'"),
        ("latin1.md", "caf\xe9 au lait".encode("latin-1"), "latin1.md: not UTF-8"),
        ("facts.txt", "a fact", "unsupported knowledge file type '.txt'"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path: Path, name: str, content: str | bytes, message: str) -> None:
    with pytest.raises(KnowledgeError) as raised:
        load_facts(_write(tmp_path, name, content))
    assert message in str(raised.value)


def test_missing_file_and_library_names(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="cannot read it"):
        load_facts(tmp_path / "missing.md")
    assert parse_spec("faq=docs/faq.md") == ("faq", Path("docs/faq.md"))
    assert parse_spec("docs/faq.md") == ("faq", Path("docs/faq.md"))
    library = load_library([f"clinic={CLINIC_FACTS}", str(BAKERY_FACTS)], top_k=3)
    assert list(library.bases) == ["clinic", "bakery"] and library.default == "clinic"
    assert "unknown" not in library and library.get(None) is None
    assert "'clinic', 'bakery'" in library.unknown_message("unknown")
    with pytest.raises(KnowledgeError, match="already loaded"):
        load_library([f"a={BAKERY_FACTS}", f"a={CLINIC_FACTS}"])


# --- retrieval ---------------------------------------------------------------------------------------------


def test_retrieval_ranks_the_fact_that_answers_first() -> None:
    base = load_library([f"clinic={CLINIC_FACTS}"]).get("clinic")
    assert base is not None and len(base.facts) == 553
    top = base.search("What's the phone number of the Alder Street clinic?")
    assert top[0].id == "b00-phone" and len(top) == 5
    assert base.search("How much does a cholesterol panel cost?")[0].id == "s01-fee"
    assert base.search("Who founded Larkspur Health?")[0].id == "p22"


def test_retrieval_rate_on_the_benchmark_questions() -> None:
    """The fact each English question needs is in the top 5 for nearly all of them (66 of 67 measured);
    foreign-language questions find facts only by the names they share with the English sheet."""
    base = load_library([f"clinic={CLINIC_FACTS}"], top_k=5).get("clinic")
    assert base is not None
    questions = [q for q in load_questions(QUESTIONS) if q.language == "en"]
    hits = sum(q.fact_id in [fact.id for fact in base.search(q.question)] for q in questions)
    assert len(questions) >= 50 and hits >= 0.95 * len(questions), f"{hits}/{len(questions)}"


def test_accents_case_and_word_endings_are_ignored() -> None:
    index = FactIndex(load_facts(BAKERY_FACTS))
    assert "04 72 10 33 58" in index.search("NUMERO de telephone?", 1)[0].text
    assert "Zéphyrine" in index.search("zephyrine", 1)[0].text
    assert "croissant" in index.search("croissants", 1)[0].text  # porter stemming: plural finds singular


@pytest.mark.parametrize(
    "question", ['say "hello', "a* OR b NEAR(c d)", "-x AND (y", "NOT", "^col:*", "'; DROP TABLE facts; --"]
)
def test_questions_are_never_read_as_search_syntax(question: str) -> None:
    index = FactIndex([Fact("1", "hello there"), Fact("2", "drop table facts")])
    index.search(question, 3)  # no sqlite3.OperationalError
    assert all(term.startswith('"') and term.endswith('"') for term in match_query(question).split(" OR "))


def test_a_question_without_words_retrieves_nothing() -> None:
    index = FactIndex([Fact("1", "hello there")])
    assert index.search("?!", 3) == [] and index.search("", 3) == []


# --- the context the model reads -----------------------------------------------------------------------


def _user(text: str | None = None, transcript: str | None = None, language: str | None = None) -> Item:
    part = (
        ContentPart(type="input_text", text=text)
        if text is not None
        else ContentPart(type="input_audio", transcript=transcript, language=language)
    )
    return Item(id=f"item_{abs(hash((text, transcript)))}", type="message", role="user", content=[part])


async def test_context_puts_this_turns_facts_after_the_instructions() -> None:
    base = load_library([f"clinic={CLINIC_FACTS}"], top_k=2).get("clinic")
    items = [_user("Where is the head office?"), _user("And what's the phone number of the Alder Street clinic?")]
    messages = await build_messages(INSTRUCTIONS, items, base)
    system = messages[0]["content"]
    assert messages[0]["role"] == "system" and system.startswith(INSTRUCTIONS + "\n\n" + FACTS_PREAMBLE)
    assert "- Alder Street clinic: The Alder Street clinic's phone number is 555-0340." in system
    assert "Meridian" not in system  # facts for the last turn only
    assert system.count("\n- ") == 2
    assert messages[1:] == chat_messages("", items)  # the conversation itself is unchanged
    assert await build_messages(INSTRUCTIONS, items, None) == chat_messages(INSTRUCTIONS, items)


async def test_context_asks_for_the_callers_language() -> None:
    french = [_user(transcript="quelle heure est-il", language="fr")]
    messages = await build_messages(INSTRUCTIONS, french, None)
    assert messages[0]["content"].endswith(
        "The caller is speaking French. Reply in French, unless your instructions say which language to use."
    )
    portuguese = await build_messages("", [_user(transcript="olá", language="pt")], None)
    assert portuguese[0] == {
        "role": "system",
        "content": "The caller is speaking Portuguese. Reply in Portuguese, unless your instructions say which "
        "language to use.",
    }
    english = await build_messages(INSTRUCTIONS, [_user(transcript="hello", language="en")], None)
    assert english[0]["content"] == INSTRUCTIONS
    typed = await build_messages(INSTRUCTIONS, [_user("bonjour")], None)  # typed: no detected language
    assert typed[0]["content"] == INSTRUCTIONS


# --- the command line: a bad file stops the start ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("empty.md", "", "no facts found"), ("broken.jsonl", '{"fact": "a"}\n{oops\n', "broken.jsonl:2: not valid JSON")],
)
def test_serve_refuses_a_bad_knowledge_file_before_binding(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = _write(tmp_path, name, content)
    port = free_port()
    command = [sys.executable, "-m", "parley.cli", "serve", "--port", str(port), "--knowledge", f"faq={path}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"parley: {path}" in done.stderr and message in done.stderr
    assert "Uvicorn running" not in done.stderr + done.stdout


# --- a real server -----------------------------------------------------------------------------------------


def _new_log(server: RunningServer, start: int) -> str:
    return server.log()[start:]


async def test_server_answers_from_a_fact_only_the_sheet_holds(default_server: RunningServer) -> None:
    mark = len(default_server.log())
    async with connect(default_server, "ga") as conn:
        created = conn.events[0]["session"]
        assert "knowledge" not in created  # not asked for: not echoed to a strict client
        await conn.send({"type": "session.update", "session": {"type": "realtime", "instructions": INSTRUCTIONS}})
        await conn.until("session.updated")
        await conn.send(user_text("What's the phone number of the Alder Street clinic?"))
        await conn.send({"type": "response.create", "response": {"max_output_tokens": 40}})
        done = (await conn.until("response.done"))["response"]
        answer = response_text(conn.events, done["id"])
        conn.assert_conformant()
    # The fact reached the model's context (logged by id, best first) and the answer carries it.
    assert "knowledge clinic: facts b00-phone," in _new_log(default_server, mark)
    assert answer_hit(answer, "555-0340"), answer


async def test_session_picks_a_base_by_query_parameter(default_server: RunningServer) -> None:
    mark = len(default_server.log())
    async with connect(default_server, "ga", knowledge="bakery") as conn:
        assert conn.events[0]["session"]["knowledge"] == "bakery"
        await conn.send(user_text("What is the name of the delivery bike?"))
        await conn.send({"type": "response.create", "response": {"max_output_tokens": 30}})
        await conn.until("response.done")
        conn.assert_conformant()
    assert "knowledge bakery: facts L24" in _new_log(default_server, mark)  # the Zéphyrine fact
    async with connect(default_server, "beta", knowledge="") as conn:  # no base at all
        assert conn.events[0]["session"]["knowledge"] is None
        mark = len(default_server.log())
        await conn.send(user_text("What is the name of the delivery bike?"))
        await conn.send({"type": "response.create", "response": {"max_output_tokens": 5}})
        await conn.until("response.done")
        conn.assert_conformant()
    assert "knowledge " not in _new_log(default_server, mark)


async def test_unknown_base_at_connect_is_refused_with_http_400(default_server: RunningServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{default_server.ws_url}?model=gpt-realtime&knowledge=nope"):
            pass
    assert refused.value.response.status_code == 400
    body = json.loads(refused.value.response.body)
    assert body["error"]["code"] == "unknown_knowledge_base" and "'clinic', 'bakery'" in body["error"]["message"]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_session_update_switches_bases_and_refuses_unknown_ones(
    default_server: RunningServer, dialect: str
) -> None:
    kind = {"type": "realtime"} if dialect == "ga" else {}
    async with connect(default_server, dialect) as conn:  # type: ignore[arg-type]
        conn.allow_extras("session.knowledge")  # this client uses the extension from here on
        await conn.send({"type": "session.update", "event_id": "evt_bad", "session": {**kind, "knowledge": "nope"}})
        error = await conn.expect_error("evt_bad")
        assert error["param"] == "session.knowledge" and error["code"] == "invalid_value"
        await conn.send({"type": "session.update", "session": {**kind, "knowledge": "bakery"}})
        updated = (await conn.until("session.updated"))["session"]
        assert updated["knowledge"] == "bakery"
        mark = len(default_server.log())
        await conn.send(user_text("How much is a croissant?"))
        await conn.send({"type": "response.create", "response": {"max_output_tokens" if dialect == "ga" else
                                                                  "max_response_output_tokens": 20}})  # fmt: skip
        await conn.until("response.done")
        assert "knowledge bakery: facts L15" in _new_log(default_server, mark)  # the croissant's table row
        await conn.send({"type": "session.update", "session": {**kind, "knowledge": None}})
        assert (await conn.until("session.updated"))["session"]["knowledge"] is None
        conn.assert_conformant()


def test_benchmark_answer_check_takes_formats_not_other_numbers() -> None:
    assert answer_hit("It costs $35.", "35") and answer_hit("Call 555 0199.", "555-0199")
    assert answer_hit("From 7.30 on weekdays", "7:30") and answer_hit("Dr. Okafor runs it.", "okafor")
    assert not answer_hit("It opens at 17:30.", "7:30") and not answer_hit("It costs $135.", "35")
    assert not answer_hit("15% off", "15") and answer_hit("15 % off", "15%")


def test_knowledge_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from parley.config import Settings

    monkeypatch.setenv("PARLEY_KNOWLEDGE", "faq.md, prices=data/prices.csv")
    monkeypatch.setenv("PARLEY_KNOWLEDGE_TOP_K", "3")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.knowledge == ["faq.md", "prices=data/prices.csv"] and settings.knowledge_top_k == 3
