"""Write the grounding benchmark's data: a fact sheet of a fictional clinic network and questions about it.

Everything is invented (names, numbers, streets), so a model can only answer from the sheet. Seeded, so the
files are the same on every run: ``python benchmarks/grounding/make_factsheet.py`` rewrites
``clinic_facts.csv`` (id, topic, fact) and ``questions.jsonl`` (question, language, the id of the fact that
answers it, and the key value the answer must carry).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 5
NETWORK = "Larkspur Health"

BRANCHES = (
    "Alder Street", "Brindle Park", "Cobalt Bay", "Dunmore Hill", "Elmbrook", "Fernhollow", "Gallowgate",
    "Harrowfield", "Ivybridge", "Juniper Point", "Kestrel Rise", "Lanternwood", "Marlow Quay", "Nettlecombe",
    "Oakhaven", "Pellmore", "Quillan Cross", "Rookery Lane", "Saltmarsh", "Thistledown", "Umber Vale",
    "Vantage Square", "Willowmere", "Yarrowby", "Zephyr Heights", "Ashcombe", "Bramblegate", "Coldwater",
    "Driftwood Bay", "Emberton", "Foxglove Road", "Greystone", "Hollin Bridge", "Inkwell Green",
    "Jasper Court", "Kingfisher Mill",
)  # fmt: skip
FIRST = (
    "Imani", "Tobias", "Ingrid", "Rafael", "Saoirse", "Kenji", "Amara", "Lukas", "Priya", "Mateo", "Freya",
    "Dmitri", "Leona", "Osei", "Yara", "Callum", "Noor", "Bastien", "Hana", "Ezra", "Maren", "Tariq", "Lidia",
    "Anselm", "Zofia", "Quentin", "Ayla", "Ruben", "Signe", "Idris",
)  # fmt: skip
LAST = (
    "Okafor", "Lindqvist", "Marchetti", "Abernathy", "Haldane", "Vasquez", "Tanaka", "Oyelaran", "Brennick",
    "Castellane", "Drummond", "Esterhazy", "Fairweather", "Grimaldi", "Holloway", "Ibarra", "Jankowski",
    "Kowalczyk", "Lestrange", "Montague", "Nakashima", "Ostrander", "Pemberton", "Quintero", "Rasmussen",
    "Sorensen", "Thackeray", "Underhill", "Valentin", "Whitlock", "Yoshida", "Zamora", "Achterberg", "Beaumont",
    "Calloway", "Delacroix", "Eriksen", "Faulkner", "Gallagher", "Hargreaves", "Ingleby", "Jovanovic", "Kerrigan",
    "Lachance", "Mbeki", "Nightingale", "Ocampo", "Prendergast", "Quayle", "Rourke", "Szabo", "Trevelyan", "Urquhart",
    "Vollmer", "Wainwright", "Xenakis", "Yardley", "Zeller", "Albrecht", "Blackwood", "Corvino", "Dunleavy",
    "Everly", "Ferreira", "Gunnarsson", "Halvorsen", "Isenberg", "Jaramillo", "Kavanagh", "Lindgren", "Moreau",
    "Navarro", "Oduya", "Pacheco", "Ravensworth", "Stroud", "Tolliver", "Umberto", "Vickery", "Winterbourne",
    "Ashdown", "Brightwater",
)  # fmt: skip
TOWNS = ("Westmarch", "Penhallow", "Greyhaven", "Corrin", "Ludgate")
STREETS = ("Road", "Street", "Avenue", "Lane", "Way", "Crescent")
SERVICES = (
    "blood test", "cholesterol panel", "flu vaccination", "travel vaccination consultation", "tetanus booster",
    "hepatitis B vaccine", "ECG", "chest X-ray", "abdominal ultrasound", "physiotherapy session",
    "sports massage", "dietitian consultation", "skin check", "mole removal", "wart freezing",
    "ear wax removal", "hearing test", "eye pressure test", "allergy skin test", "asthma review",
    "diabetes review", "blood pressure check", "prenatal checkup", "child immunisation", "school medical",
    "driving licence medical", "pilot medical", "dive medical", "pre-employment medical", "prescription renewal",
    "telehealth call", "home visit", "wound dressing", "stitches removal", "IUD insertion", "cervical screening",
    "sexual health screening", "smoking cessation consult", "weight management consult", "spirometry test",
    "bone density scan", "vitamin D test", "iron infusion", "B12 injection", "joint injection",
    "counselling session", "psychology session", "speech therapy session", "podiatry appointment",
    "orthotics fitting", "dental check", "teeth cleaning", "medical certificate", "urine test",
    "sleep apnoea screening", "memory assessment", "nutrition review for children", "ingrown toenail surgery",
    "acupuncture session", "hydrotherapy session",
)  # fmt: skip
PREPARATION = (
    "fast for 8 hours, water is fine", "bring a list of your current medicines", "wear loose clothing",
    "avoid caffeine for 12 hours", "bring your previous results", "drink a litre of water an hour before",
    "do not apply lotion to your skin that day", "bring your vaccination record", "arrive 15 minutes early",
    "no preparation is needed",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
LANGUAGES = ("French", "Portuguese", "Spanish", "Arabic", "Mandarin", "Polish", "Hindi", "Italian", "German")

# Policies, written out: (topic, fact, question, key).
POLICIES = (
    ("cancellations", "Appointments cancelled with less than 24 hours' notice are charged a late-cancellation "
     "fee of $35.", "How much do you charge if I cancel at the last minute?", "35"),
    ("missed appointments", "A missed appointment without any notice is charged $60.",
     "What happens if I just don't show up to my appointment, is there a charge?", "60"),
    ("late arrival", "Patients who arrive more than 15 minutes late may be asked to rebook.",
     "How late can I be before I have to rebook?", "15"),
    ("payment", "Larkspur Health accepts debit cards, credit cards and the Corvane Pay app; cash is not accepted.",
     "Which phone app can I pay with?", "Corvane Pay"),
    ("insurance", "Larkspur Health bills the insurers Meridia Mutual and Halcyon Assurance directly.",
     "Which insurance companies do you bill directly?", "Meridia"),
    ("medical records", "Copies of medical records are sent within 10 working days of a written request.",
     "How long does it take to get a copy of my medical records?", "10"),
    ("medical records fee", "The first copy of your medical records is free; each further copy costs $12.",
     "How much is an extra copy of my records?", "12"),
    ("repeat prescriptions", "Repeat prescriptions are ready to collect 2 working days after the request.",
     "When can I pick up a repeat prescription after I ask for it?", "2"),
    ("after hours", "After 8 pm, patients can call the Larkspur nurse line on 555-0199, every night of the year.",
     "What number do I call for a nurse at night?", "555-0199"),
    ("emergencies", "In an emergency call 119, the national emergency number, not the clinic.",
     "What number should I dial in an emergency?", "119"),
    ("children", "Children under 16 must be accompanied by a parent or guardian.",
     "Until what age does a child need a parent with them?", "16"),
    ("online booking", "Appointments can be booked online at larkspurhealth.example/book or in the Larkspur app.",
     "What is the website for booking an appointment?", "larkspurhealth.example"),
    ("registration", "New patients register with photo ID and a proof of address dated within the last 3 months.",
     "How recent does my proof of address need to be to register?", "3"),
    ("test results", "Blood test results are published in the Larkspur app within 3 working days.",
     "How many days until I see my blood test results?", "3"),
    ("interpreters", "Free interpreters can be booked for any appointment with 48 hours' notice.",
     "How much notice do you need to book an interpreter?", "48"),
    ("complaints", "Complaints go to the patient liaison officer, Wendell Ashgrove, who answers within 5 days.",
     "Who handles complaints?", "Ashgrove"),
    ("loyalty", "Members of the Larkspur Plus plan pay $19 a month and get 15% off every service.",
     "How much does the Larkspur Plus plan cost per month?", "19"),
    ("loyalty discount", "Larkspur Plus members get a 15% discount on all services.",
     "What discount do Plus members get?", "15%"),
    ("gift cards", "Larkspur gift cards are valid for 18 months from purchase.",
     "How long is a gift card valid?", "18"),
    ("refunds", "Prepaid programs are refunded in full within 14 days of purchase.",
     "Within how many days can I get a full refund for a prepaid program?", "14"),
    ("pets", "Only assistance dogs are allowed inside Larkspur clinics.",
     "Can I bring my dog into the clinic?", "assistance"),
    ("wifi", "Free wifi is available in every waiting room; the network is called Larkspur-Guest.",
     "What's the name of the guest wifi network?", "Larkspur-Guest"),
    ("founding", "Larkspur Health was founded in 1987 by Dr. Odile Farrow.",
     "Who founded Larkspur Health?", "Farrow"),
    ("chief medical officer", "The chief medical officer of Larkspur Health is Dr. Benedikt Sarrazin.",
     "Who is the chief medical officer?", "Sarrazin"),
    ("head office", "The head office is at 400 Meridian Parade, Westmarch, and does not see patients.",
     "Where is the head office?", "Meridian"),
)  # fmt: skip
EXTRA_POLICIES = (
    ("masks", "Masks are available at every reception desk for anyone with a cough or fever."),
    ("accessibility", "Every Larkspur clinic has step-free access and an accessible toilet."),
    ("feedback", "Patients can rate each visit in the Larkspur app; ratings are anonymous."),
    ("reminders", "Appointment reminders are sent by text message 48 hours before the appointment."),
    ("students", "Students with a valid card get 10% off physiotherapy and psychology sessions."),
    ("seniors", "Patients aged 70 and over pay no fee for flu vaccination."),
    ("holidays", "All clinics close on New Year's Day and Founders' Day, the 3rd of June."),
    ("chaperones", "A chaperone can be present at any examination on request."),
    ("second opinions", "Second opinions are booked as a standard consultation with a different doctor."),
    ("referrals", "Referral letters to specialists are written within 3 working days."),
    ("vaccines stock", "Travel vaccines are ordered in and need one week's notice."),
    ("lost property", "Lost property is kept at reception for 30 days."),
    ("photography", "Filming or photographing other patients in the clinic is not allowed."),
    ("privacy", "Larkspur Health never sells patient data and stores records in Corrin."),
    ("volunteers", "The volunteer program accepts applicants aged 18 and over."),
)

QUESTION_TEMPLATES = {
    "weekday_open": ("What time does the {branch} clinic open on a weekday?", "When does {branch} open on Tuesday?"),
    "weekday_close": ("How late is the {branch} clinic open on Thursdays?", "When does {branch} close on weekdays?"),
    "saturday": ("Is the {branch} clinic open on Saturday, and until when?",),
    "phone": ("What's the phone number of the {branch} clinic?", "How do I call {branch}?"),
    "address": ("What is the address of the {branch} clinic?", "Where exactly is {branch} located?"),
    "manager": ("Who is the practice manager at {branch}?", "Who runs the {branch} clinic?"),
    "lead": ("Which doctor is in charge at {branch}?",),
    "parking": ("How many free parking spaces does {branch} have?",),
    "fee": ("How much is a {service}?", "What do you charge for a {service}?"),
    "duration": ("How long does a {service} appointment last?",),
    "doctor_language": ("Which doctor speaks {language}, and where do they work?",),
}
FOREIGN_TEMPLATES = {
    ("fr", "phone"): "Quel est le numéro de téléphone de la clinique {branch} ?",
    ("fr", "manager"): "Qui dirige la clinique {branch} ?",
    ("fr", "weekday_open"): "À quelle heure ouvre la clinique {branch} en semaine ?",
    ("pt", "phone"): "Qual é o telefone da clínica {branch}?",
    ("pt", "manager"): "Quem é o gerente da clínica {branch}?",
    ("pt", "weekday_open"): "A que horas abre a clínica {branch} durante a semana?",
}


def _time(rng: random.Random, hours: range) -> str:
    return f"{rng.choice(hours)}:{rng.choice(('00', '15', '30', '45'))}"


def _names(rng: random.Random, count: int) -> list[str]:
    pairs = [(first, last) for first in FIRST for last in LAST]
    rng.shuffle(pairs)
    surnames: set[str] = set()
    chosen: list[str] = []
    for first, last in pairs:
        if last not in surnames:  # a surname names one person only: answers are checked by surname
            surnames.add(last)
            chosen.append(f"{first} {last}")
        if len(chosen) == count:
            return chosen
    raise ValueError("not enough distinct surnames")


def build(rng: random.Random) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    facts: list[dict[str, str]] = []
    candidates: list[dict[str, str]] = []  # questions that could be asked, one picked per kind below

    def fact(fid: str, topic: str, text: str, kind: str | None = None, key: str = "", **fields: str) -> None:
        facts.append({"id": fid, "topic": topic, "fact": text})
        if kind:
            candidates.append({"kind": kind, "fact_id": fid, "key": key, **fields})

    people = _names(rng, len(BRANCHES) * 2 + len(LANGUAGES))
    phones = rng.sample(range(100, 999), len(BRANCHES))
    for number, branch in enumerate(BRANCHES):
        b = f"b{number:02d}"
        topic = f"{branch} clinic"
        opens, closes = _time(rng, range(7, 10)), _time(rng, range(17, 21))
        manager, lead = people[2 * number], people[2 * number + 1]
        phone = f"555-0{phones[number]}"
        street = f"{rng.randint(2, 480)} {branch.split()[0]} {rng.choice(STREETS)}"
        town = rng.choice(TOWNS)
        spaces = rng.randint(4, 60)
        fact(f"{b}-hours", topic, f"The {branch} clinic is open Monday to Friday from {opens} to {closes}.",
             "weekday_open", opens, branch=branch)  # fmt: skip
        candidates.append({"kind": "weekday_close", "fact_id": f"{b}-hours", "key": closes, "branch": branch})
        if rng.random() < 0.6:
            sat_close = _time(rng, range(12, 17))
            fact(f"{b}-saturday", topic, f"On Saturdays the {branch} clinic opens at 9:00 and closes at {sat_close}.",
                 "saturday", sat_close, branch=branch)  # fmt: skip
        else:
            fact(f"{b}-saturday", topic, f"The {branch} clinic is closed on Saturdays and Sundays.",
                 "saturday", "closed", branch=branch)  # fmt: skip
        fact(f"{b}-phone", topic, f"The {branch} clinic's phone number is {phone}.", "phone", phone, branch=branch)
        fact(f"{b}-address", topic, f"The {branch} clinic is at {street}, {town}.", "address", street, branch=branch)
        fact(f"{b}-manager", topic, f"The practice manager of the {branch} clinic is {manager}.",
             "manager", manager.split()[1], branch=branch)  # fmt: skip
        fact(f"{b}-lead", topic, f"Dr. {lead} is the lead physician at the {branch} clinic.",
             "lead", lead.split()[1], branch=branch)  # fmt: skip
        fact(f"{b}-parking", topic, f"The {branch} clinic has {spaces} free parking spaces behind the building.",
             "parking", str(spaces), branch=branch)  # fmt: skip
        day = rng.choice(WEEKDAYS)
        service = rng.choice(SERVICES)
        fact(f"{b}-special", topic, f"The {branch} clinic runs a walk-in {service} clinic every {day} morning.")
    for number, service in enumerate(SERVICES):
        s = f"s{number:02d}"
        topic = f"{service} (service)"
        fee, minutes = rng.randrange(25, 400, 5), rng.choice((10, 15, 20, 30, 45, 60, 90))
        fact(f"{s}-fee", topic, f"A {service} at Larkspur Health costs ${fee}.", "fee", str(fee), service=service)
        fact(f"{s}-duration", topic, f"A {service} appointment takes about {minutes} minutes.",
             "duration", str(minutes), service=service)  # fmt: skip
        fact(f"{s}-preparation", topic, f"Before a {service}: {rng.choice(PREPARATION)}.")
    for number, language in enumerate(LANGUAGES):
        doctor = people[2 * len(BRANCHES) + number]
        branch = rng.choice(BRANCHES)
        days = " and ".join(rng.sample(WEEKDAYS, 2))
        fact(f"d{number:02d}-language", "doctors",
             f"Dr. {doctor} speaks {language} and works at the {branch} clinic on {days}.",
             "doctor_language", doctor.split()[1], language=language)  # fmt: skip
    for number, (topic, text, question, key) in enumerate(POLICIES):
        fact(f"p{number:02d}", topic, text)
        candidates.append({"kind": "policy", "fact_id": f"p{number:02d}", "key": key, "question": question})
    for number, (topic, text) in enumerate(EXTRA_POLICIES):
        fact(f"q{number:02d}", topic, text)
    for branch_number, branch in enumerate(BRANCHES):  # one more fact per branch: what the building offers
        lift = "has a lift to every floor" if rng.random() < 0.5 else "is on one floor"
        fact(f"b{branch_number:02d}-building", f"{branch} clinic", f"The {branch} clinic building {lift}.")
    return facts, _questions(rng, candidates)


def _questions(rng: random.Random, candidates: list[dict[str, str]]) -> list[dict[str, str]]:
    """About 70 questions: every policy, a few of each kind of branch and service fact, some in fr and pt."""
    per_kind = {"weekday_open": 4, "weekday_close": 3, "saturday": 4, "phone": 4, "address": 3, "manager": 4,
                "lead": 3, "parking": 3, "fee": 6, "duration": 4, "doctor_language": 4}  # fmt: skip
    questions: list[dict[str, str]] = []
    for candidate in candidates:
        if candidate["kind"] == "policy":
            questions.append(_question(candidate, candidate["question"], "en"))
    for kind, count in per_kind.items():
        pool = [c for c in candidates if c["kind"] == kind]
        for candidate in rng.sample(pool, count):
            template = rng.choice(QUESTION_TEMPLATES[kind])
            questions.append(_question(candidate, template.format(**candidate), "en"))
    asked = {q["fact_id"] for q in questions}
    for (language, kind), template in FOREIGN_TEMPLATES.items():
        pool = [c for c in candidates if c["kind"] == kind and c["fact_id"] not in asked]
        for candidate in rng.sample(pool, 2):
            asked.add(candidate["fact_id"])
            questions.append(_question(candidate, template.format(**candidate), language))
    return questions


def _question(candidate: dict[str, str], text: str, language: str) -> dict[str, str]:
    return {"question": text, "language": language, "fact_id": candidate["fact_id"], "key": candidate["key"]}


def main() -> None:
    facts, questions = build(random.Random(SEED))
    with (HERE / "clinic_facts.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=["id", "topic", "fact"])
        writer.writeheader()
        writer.writerows(facts)
    lines = (json.dumps(q, ensure_ascii=False) for q in questions)
    (HERE / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(facts)} facts, {len(questions)} questions")


if __name__ == "__main__":
    main()
