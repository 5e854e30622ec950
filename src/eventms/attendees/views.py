"""The attendee as the API shows it by id: with their registrations, each with its
event. Apart from `schemas` because it joins three features, which import each
other's plain shapes only."""

from __future__ import annotations

import re

from eventms.attendees.schemas import AttendeeOut, attendee_columns
from eventms.db.json import JsonArray, JsonObject, Matches, Source
from eventms.db.queries import contains
from eventms.events.schemas import EventBase, event_columns
from eventms.registrations.schemas import RegistrationBase, registration_columns


class AttendeeRegistration(RegistrationBase):
    """One of an attendee's `registrations`: with its event."""

    event: EventBase


class AttendeeDetail(AttendeeOut):
    """An attendee with their registrations, each with its event."""

    registrations: list[AttendeeRegistration]


# The same views rendered by PostgreSQL (db/json.py), for reads.
ATTENDEE_JSON = JsonObject(AttendeeOut, attendee_columns("a"))
ATTENDEE_DETAIL_JSON = JsonObject(
    AttendeeDetail,
    {
        **attendee_columns("a"),
        "registrations": JsonArray(
            JsonObject(
                AttendeeRegistration,
                {**registration_columns("r"), "event": JsonObject(EventBase, event_columns("e"))},
            ),
            "FROM registrations r JOIN events e ON e.id = r.event_id WHERE r.attendee_id = a.id",
            "r.created_at, r.id",
        ),
    },
)
ONE_ATTENDEE = Source("FROM attendees a WHERE a.id = :id")
# The events an attendee's view shows: their cache tags.
SHOWN_EVENTS = "ARRAY(SELECT event_id FROM registrations WHERE attendee_id = a.id) AS event_ids"


# Runs of three or more ASCII letters and digits: what pg_trgm makes whole trigrams of.
# A piece keeps the text's case: PostgreSQL folds it as it folds the whole text.
_WORDLIKE = re.compile(r"[A-Za-z0-9]{3,}")


def trigram_probes(text: str) -> str | None:
    """An ILIKE pattern that every text containing `text` matches, made of a few
    three-letter pieces of it in order (`ada lovelace`: `%ada%lov%ela%`): each
    word-like run cut into consecutive pieces of three, none overlapping (the
    pattern's `%` needs them apart). None for a text without such a run."""
    probes = [
        run[start : start + 3]
        for run in _WORDLIKE.findall(text)
        for start in range(0, len(run) - 2, 3)
    ]
    return "%" + "%".join(probes) + "%" if probes else None


def search_matches(*, name: str | None, email: str | None) -> tuple[Matches, dict[str, str]]:
    """Attendees whose name and/or email contain `name` / `email` (case-insensitive),
    by name, and the statement's parameters.

    A search of two words or more (in one text or both) asks the trigram index for
    the few pieces of `trigram_probes`, not for every trigram of the texts: at a
    million attendees, intersecting each trigram's list of rows was most of such a
    search's time, and the rows holding a few pieces of each word are about as few
    as those holding all of them. The whole text is then checked on those rows
    (`|| ''`: an expression no index covers, so the index is not asked for it too).
    Within one word the trigrams' lists hold about the rows that match anyway:
    leaving some out would save little and add a check per row, so a one-word
    search is matched as it is."""
    texts = {column: text for column, text in (("name", name), ("email", email)) if text}
    words = sum(len(_WORDLIKE.findall(text)) for text in texts.values())
    conditions, params = [], {}
    for column, text in texts.items():
        params[column] = contains(text)
        probes = trigram_probes(text) if words >= 2 else None
        if probes is None or probes == params[column]:
            conditions.append(f"a.{column} ILIKE %({column})s ESCAPE '\\'")
            continue
        params[f"{column}_probes"] = probes
        conditions.append(f"a.{column} ILIKE %({column}_probes)s")
        conditions.append(f"(a.{column} || '') ILIKE %({column})s ESCAPE '\\'")
    where = " AND ".join(conditions)
    return Matches("attendees", "a", where, order=("name", "id")), params
