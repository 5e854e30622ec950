"""Attendees over HTTP: CRUD, case-insensitive unique email, search."""

from __future__ import annotations

import uuid

from tests.support.api import make_attendee, make_event, register


async def test_create_and_get_attendee_with_registrations(client):
    response = await client.post("/attendee", json={"name": "Ada", "email": "ada@example.com"})
    assert response.status_code == 201
    assert response.json()["message"] == "Attendee created successfully"
    person = response.json()["result"]
    event = await make_event(client, name="Analytical")
    await register(client, event["id"], person["id"])
    response = await client.get(f"/attendee/{person['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Attendee found"
    assert body["result"]["email"] == "ada@example.com"
    assert body["result"]["registrations"][0]["event"]["name"] == "Analytical"


async def test_email_is_unique_case_insensitively(client, db):
    await make_attendee(client, email="A@example.io")
    response = await client.post("/attendee", json={"name": "Other", "email": "a@example.io"})
    assert response.status_code == 409
    assert response.json()["message"] == "The Email a@example.io already exists"
    assert db.execute("SELECT count(*) FROM attendees").fetchone()[0] == 1


async def test_update_to_taken_email_is_409(client):
    await make_attendee(client, email="one@example.io")
    other = await make_attendee(client, email="two@example.io")
    response = await client.patch(f"/attendee/{other['id']}", json={"email": "ONE@example.io"})
    assert response.status_code == 409
    response = await client.patch(f"/attendee/{other['id']}", json={"name": "Renamed"})
    assert response.status_code == 200
    assert response.json()["message"] == "Attendee updated successfully"
    assert response.json()["result"]["name"] == "Renamed"
    assert response.json()["result"]["email"] == "two@example.io"


async def test_unknown_attendee_is_404(client):
    missing = uuid.uuid4()
    response = await client.get(f"/attendee/{missing}")
    assert response.status_code == 404
    assert response.json()["message"] == f"Attendee with ID {missing} not found"
    assert (await client.patch(f"/attendee/{missing}", json={"name": "x"})).status_code == 404
    assert (await client.delete("/attendee/123")).status_code == 404


async def test_delete_attendee_cascades_and_frees_seats(client, db):
    event = await make_event(client, maxAttendees=1)
    person = await make_attendee(client)
    await register(client, event["id"], person["id"])
    response = await client.delete(f"/attendee/{person['id']}")
    assert response.status_code == 200
    assert response.json()["message"] == "Attendee deleted successfully"
    assert db.execute("SELECT count(*) FROM registrations").fetchone()[0] == 0
    seats = (await client.get(f"/event/{event['id']}")).json()["result"]
    assert seats["registeredCount"] == 0 and seats["availableSeats"] == 1


async def test_search_by_name_and_email_substrings(client):
    await make_attendee(client, name="Ada Lovelace", email="ada@engine.org")
    await make_attendee(client, name="Alan Turing", email="alan@bletchley.uk")
    await make_attendee(client, name="Grace Hopper", email="grace@navy.mil")

    async def names(**params):
        response = await client.get("/attendee", params=params)
        assert response.status_code == 200
        assert response.json()["message"] == "List of attendees"
        return sorted(a["name"] for a in response.json()["result"])

    assert await names(name="LOVE") == ["Ada Lovelace"]
    assert await names(email="BLETCH") == ["Alan Turing"]
    assert await names(name="a") == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert await names(name="a", email="navy") == ["Grace Hopper"]
    assert await names() == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]


async def test_search_treats_wildcards_and_sql_as_text(client):
    await make_attendee(client, name="100% Real_Name", email="pct@example.com")
    await make_attendee(client, name="Plain Name", email="plain@example.com")
    for text, expected in (
        ("%", 1),
        ("_", 1),
        ("0% R", 1),
        ("'; DROP TABLE attendees; --", 0),
        ("\\", 0),
        ('"', 0),
    ):
        response = await client.get("/attendee", params={"name": text})
        assert response.status_code == 200, text
        assert response.json()["meta"]["total"] == expected, text
    assert (await client.get("/attendee")).json()["meta"]["total"] == 2


async def test_search_pages_carry_the_total_even_past_the_end(client):
    for n in range(3):
        await make_attendee(client, name=f"Pager {n}", email=f"pager{n}@example.com")
    await make_attendee(client, name="Someone Else", email="else@example.com")

    async def page(number):
        response = await client.get(
            "/attendee", params={"name": "pager", "limit": 2, "page": number}
        )
        assert response.status_code == 200
        body = response.json()
        return [a["name"] for a in body["result"]], body["meta"]

    assert await page(1) == (["Pager 0", "Pager 1"], {"page": 1, "limit": 2, "total": 3})
    assert await page(2) == (["Pager 2"], {"page": 2, "limit": 2, "total": 3})
    assert await page(5) == ([], {"page": 5, "limit": 2, "total": 3})


def test_trigram_probes_are_pieces_of_the_text_in_order() -> None:
    from eventms.attendees.views import trigram_probes

    assert trigram_probes("ada lovelace") == "%ada%lov%ela%"
    assert trigram_probes("Tim Berners-Lee") == "%Tim%Ber%ner%Lee%"
    assert trigram_probes("@example.org") == "%exa%mpl%org%"
    assert trigram_probes("lovelace") == "%lov%ela%"
    assert trigram_probes("Zoë Ünal") == "%nal%"
    # No run of three ASCII letters or digits: nothing to ask the index for.
    for text in ("a b", "Zoë", "10% x_y", ""):
        assert trigram_probes(text) is None, text


def test_only_searches_of_two_words_or_more_ask_for_pieces() -> None:
    from eventms.attendees.views import search_matches

    def probed(**texts: str | None) -> list[str]:
        return sorted(key for key in search_matches(**texts)[1] if key.endswith("_probes"))

    assert probed(name="lovelace", email=None) == []  # one word
    assert probed(name="ada lovelace", email=None) == ["name_probes"]
    assert probed(name="ada", email="lovelace") == ["email_probes"]  # `%ada%` is all of it
    assert probed(name=None, email="p10@engine1") == ["email_probes"]


async def test_multi_word_searches_find_exactly_what_the_whole_text_matches(client, db):
    """A search of several words asks the index for a few pieces of it, then checks
    the whole text: the same rows as one ILIKE over every row."""
    from eventms.db.queries import contains

    names = [
        "Ada Lovelace",
        "Adalovelace",
        "Ada  Lovelace",
        "Lovelace Ada",
        "ADA LOVELACE-KING",
        "ada_lovelace",
        "Ada Lovelace 100%",
        "Ålan Turing",
        "Alan Turing Jr",
        "Alan Turing",
    ]
    for number, name in enumerate(names):
        await make_attendee(client, name=name, email=f"p{number}@engine{number % 3}.org")
    for column, text in (
        ("name", "ada lovelace"),
        ("name", "ADA LOVE"),
        ("name", "lace-king"),
        ("name", "an tur"),
        ("name", "alan turing jr"),
        ("name", "ing jr"),
        ("name", "e 100%"),
        ("name", "Ålan Tur"),
        ("name", "ada lovelace ada"),
        ("email", "engine1.org"),
        ("email", "p1@engine1"),
        ("email", "engine"),
    ):
        response = await client.get("/attendee", params={column: text, "limit": 100})
        assert response.status_code == 200, text
        found = sorted(a[column] for a in response.json()["result"])
        rows = db.execute(
            f"SELECT {column} FROM attendees WHERE {column} ILIKE %s ESCAPE '\\'",
            (contains(text),),
        ).fetchall()
        assert found == sorted(row[0] for row in rows), text
        assert response.json()["meta"]["total"] == len(rows), text
