"""Habitudes de vie v1: the resident's routines and preferences, so care follows their rhythm."""

from __future__ import annotations

from typing import Final

from bsante.forms.engine import FieldDef, FieldType, FormDefinition, boolean, choice, group, text


def _time(fid: str, label: str) -> FieldDef:
    return FieldDef(id=fid, label=label, type=FieldType.TIME)


FIELDS: Final = (
    group(
        "sleep",
        "Sommeil",
        [
            _time("wake_time", "Heure de lever"),
            _time("bed_time", "Heure de coucher"),
            boolean("nap", "Sieste"),
            text("night_habits", "Habitudes de nuit (lumière, porte ouverte, boisson...)"),
        ],
    ),
    group(
        "meals",
        "Repas",
        [
            _time("breakfast_time", "Heure du petit-déjeuner"),
            choice(
                "breakfast_place",
                "Petit-déjeuner pris",
                [("chambre", "En chambre"), ("salle", "En salle à manger")],
            ),
            text("likes", "Aliments appréciés"),
            text("dislikes", "Aliments refusés"),
            text("drinks", "Boissons habituelles"),
            text("cultural_diet", "Régime culturel ou religieux"),
        ],
    ),
    group(
        "hygiene",
        "Hygiène",
        [
            choice(
                "preference",
                "Préférence",
                [("douche", "Douche"), ("bain", "Bain"), ("lavabo", "Toilette au lavabo")],
            ),
            choice(
                "moment",
                "Moment préféré",
                [("matin", "Matin"), ("apres_midi", "Après-midi"), ("soir", "Soir")],
            ),
            text("notes", "Particularités (produits, pudeur, rasage, coiffure...)"),
        ],
    ),
    text("clothing", "Habitudes vestimentaires"),
    text("hobbies", "Loisirs et centres d'intérêt"),
    text("beliefs", "Croyances, pratique religieuse"),
    text("social", "Visites, famille, vie sociale"),
    boolean("tobacco", "Tabac"),
    boolean("alcohol", "Alcool"),
    text("pets", "Animaux"),
    text("life_story", "Histoire de vie (métier, lieux, événements marquants)"),
    text("wishes", "Souhaits exprimés"),
)

DEFINITION: Final = FormDefinition(
    id="habitudes_vie",
    version=1,
    title="Habitudes de vie",
    description="Rythmes, préférences et histoire de vie du résident",
    fields=FIELDS,
)
