"""capitals: "What is the capital of X?" for 60 countries, written here (no download).

Out-of-domain for the embedded default, and far from Countdown: knowledge the base model already has (the paper's
MMLU-Pro stands for knowledge; this is its toy). Fine-tuning on search traces may keep it, lose it, or bury it
under a trace; the score says which. One capital per country, the seat of government where it is the common
answer (e.g. Canberra, Ottawa, Brasília written without its accent as Brasilia is accepted as well).
"""
from __future__ import annotations

from pathlib import Path

from rsft.tasks.datafile import save

# (country, capital, other accepted spellings)
CAPITALS = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Germany", "Berlin"), ("Spain", "Madrid"),
    ("Egypt", "Cairo"), ("Russia", "Moscow"), ("China", "Beijing"), ("the United Kingdom", "London"),
    ("Canada", "Ottawa"), ("Greece", "Athens"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"),
    ("Ireland", "Dublin"), ("Austria", "Vienna"), ("Portugal", "Lisbon"), ("Poland", "Warsaw"),
    ("Sweden", "Stockholm"), ("Cuba", "Havana"), ("Australia", "Canberra"), ("India", "New Delhi"),
    ("Brazil", "Brasilia"), ("Argentina", "Buenos Aires"), ("Mexico", "Mexico City"), ("Thailand", "Bangkok"),
    ("South Korea", "Seoul"), ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Hungary", "Budapest"), ("the Czech Republic", "Prague"),
    ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"), ("Switzerland", "Bern"), ("Chile", "Santiago"),
    ("Colombia", "Bogota"), ("Venezuela", "Caracas"), ("Nigeria", "Abuja"), ("Ethiopia", "Addis Ababa"),
    ("Morocco", "Rabat"), ("Saudi Arabia", "Riyadh"), ("Israel", "Jerusalem"), ("Pakistan", "Islamabad"),
    ("Indonesia", "Jakarta"), ("the Philippines", "Manila"), ("Vietnam", "Hanoi"), ("Malaysia", "Kuala Lumpur"),
    ("New Zealand", "Wellington"), ("Ukraine", "Kyiv"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"),
    ("Serbia", "Belgrade"), ("Croatia", "Zagreb"), ("Iceland", "Reykjavik"), ("Scotland", "Edinburgh"),
    ("Afghanistan", "Kabul"), ("Nepal", "Kathmandu"),
)
# spellings a reply may use for the same city
ALIASES = {"Brasilia": ("Brasília",), "Bogota": ("Bogotá",), "Kyiv": ("Kiev",), "Reykjavik": ("Reykjavík",),
           "Beijing": ("Peking",)}


def make_rows() -> list[dict]:
    return [{"country": c, "question": f"What is the capital of {c}?", "answer": city,
             "accepted": [city, *ALIASES.get(city, ())]} for c, city in CAPITALS]


def build(data_dir: Path) -> None:
    save(data_dir, "capitals", make_rows())
