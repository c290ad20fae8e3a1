"""The guided entry form (RETKOOP's boxes 1-7), the opening balances, actions, imports and vouchers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from flask_wtf.file import FileField, FileRequired, MultipleFileField
from wtforms import FieldList, Form, FormField, HiddenField, RadioField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional, StopValidation

from app import ledger as books
from app.ledger import KIND_LABELS, MODE_LABELS
from app.models import Entry
from app.money import format_amount
from app.reconciliation import EntrySuggestion
from forms.fields import MoneyField
from forms.validators import SingleLineForm, SingleLineMeta

REQUIRED = "Ce champ est obligatoire."
FORM_MODES = ("cheque", "virement", "especes", "carte", "prelevement", "remise")


class FrenchDateField(StringField):
    """A date typed as 25/09/2025 (or sent as 2025-09-25 by a browser's date picker)."""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return self.data.isoformat() if isinstance(self.data, date) else ""

    def process_formdata(self, valuelist):
        raw = (valuelist[0] if valuelist else "").strip()
        self.data = None
        if not raw:
            return
        for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y"):
            try:
                self.data = datetime.strptime(raw, fmt).date()
                return
            except ValueError:
                continue
        raise ValueError("Date invalide : écrivez-la jj/mm/aaaa (par exemple 25/09/2025).")


class Required:
    """Like DataRequired, but 0 is a value and the field's own parse error is kept.

    DataRequired wipes the field's errors: a teacher who typed 31/02 would read « Indiquez la
    date » instead of « Date invalide », and a bank balance of 0,00 would be refused.
    """

    field_flags = {"required": True}

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, form, field) -> None:
        if field.process_errors:
            raise StopValidation()  # the parse error already says what is wrong
        if field.data is None or (isinstance(field.data, str) and not field.data.strip()):
            raise StopValidation(self.message)


class SplitForm(Form):
    """One line of box 7. Empty lines are ignored."""

    class Meta(SingleLineMeta):  # a subform: its one-line fields refuse control characters too
        pass

    account = SelectField("Compte", choices=[], validate_choice=False)
    amount = MoneyField("Montant", validators=[Optional()])


class Messages:
    """Error messages of a part of a form that is not one field (box 7: the split as a whole)."""

    def __init__(self) -> None:
        self.errors: list[str] = []


MAX_VOUCHERS = 10  # files attached at once in the entry form

# Where the domain's names for the boxes are shown on the form (others are the field's own name).
ENTRY_FIELDS = {"box6": "bank_amount", "box7": "box7", "stale": "version", "name": "new_action", "file": "vouchers"}


class EntryForm(SingleLineForm):
    """Création d'une nouvelle opération comptable."""

    form_token = HiddenField()
    version = HiddenField()
    statement_line = HiddenField()  # « Créer l'opération » from a statement line: pointed with it once saved
    piece = StringField(
        "1. N° de pièce justificative",
        validators=[DataRequired(REQUIRED), Length(max=20)],
        description="Le même numéro que sur la facture, le ticket ou le bordereau (ex. D07, R12).",
    )
    date = FrenchDateField(
        "2. Date",
        validators=[Required("Indiquez la date de l'opération.")],
        description="Date du chèque ou de la remise, pas la date du relevé bancaire.",
        render_kw={"type": "date"},
    )
    label = StringField(
        "3. Libellé",
        validators=[DataRequired(REQUIRED), Length(max=200)],
        description="Soyez précis : « Achat de livres pour la BCD », « Remise photos de classe »…",
    )
    payment_mode = SelectField("4. Mode de paiement", choices=[(m, MODE_LABELS[m]) for m in FORM_MODES])
    cheque_number = StringField(
        "N° du chèque émis",
        validators=[Optional(), Length(max=20)],
        description="Pour un chèque que la coopérative a signé.",
    )
    slip_number = StringField(
        "N° du bordereau de remise",
        validators=[Optional(), Length(max=20)],
        description="Le numéro imprimé sur le bordereau de remise de chèques : le relevé le "
        "reprend, ce qui permet de pointer la remise d'un seul clic.",
    )
    action = SelectField("5. Action (facultatif)", choices=[("", "— Aucune —")], validate_choice=False)
    new_action = StringField(
        "ou nouvelle action",
        validators=[Optional(), Length(max=100)],
        description="Par exemple « Classe de mer » : l'action est créée avec l'opération.",
    )
    kind = RadioField(
        "6. Type d'opération",
        choices=list(KIND_LABELS.items()),
        default="expense",
        validators=[DataRequired("Choisissez le type d'opération.")],
    )
    bank_amount = MoneyField("Montant par la banque (€)", validators=[Optional()])
    cash_amount = MoneyField("Montant en espèces, caisse (€)", validators=[Optional()])
    splits = FieldList(FormField(SplitForm), min_entries=3)
    vouchers = MultipleFileField(
        "Pièces justificatives (facultatif)",
        description=f"Facture, ticket, bordereau : PDF, JPEG ou PNG, 10 Mo au plus chacun, {MAX_VOUCHERS} fichiers au "
        "plus. Vous pouvez en choisir plusieurs à la fois ; une photo prise avec un téléphone convient.",
        render_kw={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"},
    )
    add_line = SubmitField("Ajouter une ligne de ventilation")
    resume = SubmitField("Reprendre toute ma saisie")  # after a conflict: shows the typed values, saves nothing
    submit = SubmitField("Valider et calculer cette opération comptable")

    def voucher_uploads(self) -> list:
        """The files chosen in the vouchers field (an empty file input sends one nameless part: ignored)."""
        return [upload for upload in (self.vouchers.data or []) if upload and upload.filename]

    def validate_vouchers(self, field) -> None:
        if len(self.voucher_uploads()) > MAX_VOUCHERS:
            raise StopValidation(f"Choisissez {MAX_VOUCHERS} fichiers au plus à la fois.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.box7 = Messages()  # the domain's box-7 refusals (split vs amount), shown above the split

    def prepare(self, accounts: dict[str, list[tuple[str, str]]], actions: list[tuple[str, str]]) -> None:
        """Offer the accounts (grouped) and the coop's actions; keep at least 3 split lines, one blank."""
        choices = {"": [("", "— Choisir un compte —")], **accounts}
        self.action.choices = [("", "— Aucune —"), *actions]
        blank = sum(1 for sub in self.splits if not sub.account.data and not sub.amount.data)
        while len(self.splits) < 3 or blank < 1:
            self.splits.append_entry()
            blank += 1
        for sub in self.splits:
            sub.account.choices = choices

    def entry_data(self, resolve_action: Callable[[str, str], int | None]) -> books.EntryData:
        """Boxes 1-7 as the domain's EntryData (DomainError names the faulty box).

        `resolve_action(new_name, chosen_id)` gives box 5's action id: it may create the action, so
        call this inside the unit of work.
        """
        data = books.entry_data(
            piece=self.piece.data,
            date=self.date.data,
            label=self.label.data,
            kind=self.kind.data,
            payment_mode=self.payment_mode.data,
            bank=self.bank_amount.data or 0,
            cash=self.cash_amount.data or 0,
            splits=[(sub.account.data, sub.amount.data) for sub in self.splits],
            cheque_number=self.cheque_number.data or "",
            slip_number=self.slip_number.data or "",
        )
        return replace(data, action_id=resolve_action(self.new_action.data or "", self.action.data or ""))

    def expected_version(self) -> int | None:
        """The entry version the form was loaded with (None on a new entry)."""
        return int(self.version.data) if (self.version.data or "").isdigit() else None

    def fill_from(self, entry: Entry) -> None:
        """Show a stored entry, as the form would post it back."""
        self.piece.data, self.date.data, self.label.data = entry.piece, entry.date, entry.label
        if entry.payment_mode == "remise":
            self.slip_number.data = entry.cheque_number
        else:
            self.cheque_number.data = entry.cheque_number
        self.kind.data = books.form_kind(entry)
        if entry.payment_mode in dict(self.payment_mode.choices):
            self.payment_mode.data = entry.payment_mode
        self.action.data = str(entry.action_id) if entry.action_id else ""
        self.version.data = str(entry.version)
        bank, cash = books.box6_amounts(entry)
        self.bank_amount.data, self.cash_amount.data = bank or None, cash or None
        splits = books.split_amounts(entry, self.kind.data)
        while len(self.splits) < len(splits):
            self.splits.append_entry()
        for sub, (code, amount) in zip(self.splits, splits, strict=False):
            sub.account.data, sub.amount.data = code, amount

    def prefill(self, suggestion: EntrySuggestion, statement_line_id: int) -> None:
        """« Créer l'opération » from a statement line: what `reconciliation.suggest_entry` proposes."""
        self.statement_line.data = str(statement_line_id)
        self.kind.data, self.payment_mode.data = suggestion.kind, suggestion.payment_mode
        self.date.data, self.label.data = suggestion.date, suggestion.label
        self.bank_amount.data = suggestion.bank_amount
        self.cheque_number.data = ""
        for sub, (code, cents) in zip(self.splits, suggestion.splits, strict=False):
            sub.account.data, sub.amount.data = code, cents

    def statement_line_id(self) -> int | None:
        """The statement line this entry was created from, to point it with once saved."""
        raw = self.statement_line.data or ""
        return int(raw) if raw.isdigit() else None


@dataclass(frozen=True)
class BoxValue:
    """One box of the entry form as the user reads it (`shown`) and as the form takes it back (`value`)."""

    label: str
    shown: str
    value: str | list[list[str]]


EMPTY = "(case vide)"
# The boxes compared after a conflict, in the order of the form (the split lines count as one box).
MERGED_BOXES = (
    "piece",
    "date",
    "label",
    "payment_mode",
    "cheque_number",
    "slip_number",
    "action",
    "new_action",
    "kind",
    "bank_amount",
    "cash_amount",
    "splits",
)


def _choice_label(choices: Any, value: str) -> str:
    """The text of `value` among flat or grouped (dict) choices."""
    groups = choices.values() if isinstance(choices, dict) else [choices]
    return next((text for options in groups for key, text in options if key == value), value)


def _money(cents: int | None) -> str:
    return format_amount(cents) if cents else ""


def box_values(form: EntryForm) -> dict[str, BoxValue]:
    """Every box of a prepared form (see `EntryForm.prepare`), keyed by field name.

    A cheque or slip number that the operation would not keep (another payment mode) counts as empty,
    so that a hidden box never shows as a difference.
    """
    kind, mode = form.kind.data or "", form.payment_mode.data or ""
    if len(books.MODES_FOR_KIND.get(kind, ())) == 1:
        mode = ""  # box 4 does not apply (fixed by the kind): whatever the hidden select holds is no difference
    texts = {
        "piece": (form.piece.data or "").strip(),
        "label": (form.label.data or "").strip(),
        "new_action": (form.new_action.data or "").strip(),
        "cheque_number": books.cheque_number_for(kind, mode, (form.cheque_number.data or "").strip(), ""),
        "slip_number": books.cheque_number_for(kind, mode, "", (form.slip_number.data or "").strip()),
    }
    values = {name: BoxValue(form[name].label.text, text or EMPTY, text) for name, text in texts.items()}
    day = form.date.data
    values["date"] = BoxValue(
        form.date.label.text, day.strftime("%d/%m/%Y") if day else EMPTY, day.isoformat() if day else ""
    )
    for name, chosen in (("payment_mode", mode), ("action", form.action.data or ""), ("kind", kind)):
        values[name] = BoxValue(
            form[name].label.text, _choice_label(form[name].choices, chosen) if chosen else EMPTY, chosen
        )
    for name in ("bank_amount", "cash_amount"):
        amount = _money(form[name].data)
        values[name] = BoxValue(form[name].label.text, f"{amount} €" if amount else EMPTY, amount)
    lines = [[sub.account.data, _money(sub.amount.data)] for sub in form.splits if sub.account.data or sub.amount.data]
    choices = form.splits[0].account.choices if len(form.splits) else []
    shown = " ; ".join(
        f"{_choice_label(choices, code) if code else '?'} : {amount or '0,00'} €" for code, amount in lines
    )
    values["splits"] = BoxValue("7. Ventilation", shown or EMPTY, lines)
    return {name: values[name] for name in MERGED_BOXES}


def typed_differences(typed: EntryForm, saved: EntryForm) -> dict[str, BoxValue]:
    """The boxes where what a tab typed differs from what is saved: the typed value, to show beside."""
    mine, theirs = box_values(typed), box_values(saved)
    return {name: value for name, value in mine.items() if value.value != theirs[name].value}


class CarriedItemForm(Form):
    """One cheque or deposit outstanding at 31 August in the previous tool (a blank row is ignored)."""

    class Meta(SingleLineMeta):  # a subform: its one-line fields refuse control characters too
        pass

    direction = SelectField(
        "Sens",
        choices=[("out", "Chèque émis pas encore débité"), ("in", "Remise pas encore créditée")],
        default="out",
    )
    date = FrenchDateField("Date", validators=[Optional()])
    label = StringField("Libellé", validators=[Optional(), Length(max=150)])
    cheque_number = StringField("N° de chèque", validators=[Optional(), Length(max=20)])
    amount = MoneyField("Montant (€)", validators=[Optional()])

    def is_blank(self) -> bool:
        return (
            not (self.date.raw_data and self.date.raw_data[0].strip())
            and not self.label.data
            and self.amount.data is None
        )

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators) or self.is_blank():
            return not self.errors
        missing = {"date": self.date.data is None, "label": not (self.label.data or "").strip()}
        missing["amount"] = self.amount.data is None or self.amount.data <= 0
        for name, is_missing in missing.items():
            if is_missing:
                message = "Indiquez un montant positif." if name == "amount" else REQUIRED
                getattr(self, name).errors = [*getattr(self, name).errors, message]
        return not any(missing.values())


CARRIED_ROWS = 3  # blank rows shown; « Ajouter des lignes » adds as many (no JavaScript needed)


class OpeningForm(SingleLineForm):
    """Report à nouveau at 1 September (a coop's first year on the portal), with the cheques and deposits
    still outstanding at 31 August in the previous tool."""

    bank = MoneyField(
        "Solde de la banque au 1er septembre (€)",
        validators=[Required(REQUIRED)],
        description="Le solde de votre cahier au 31 août précédent (pas celui du relevé).",
    )
    cash = MoneyField("Espèces en caisse au 1er septembre (€)", validators=[Optional()])
    items = FieldList(FormField(CarriedItemForm), min_entries=CARRIED_ROWS, max_entries=books.MAX_CARRIED_ITEMS)
    more = SubmitField("Ajouter des lignes")
    submit = SubmitField("Enregistrer le report à nouveau")

    def carried_items(self) -> list[books.CarriedItem]:
        """The filled rows as the domain's items (cheques issued negative, deposits positive)."""
        return [
            books.CarriedItem(
                date=row.date.data,
                label=row.label.data.strip(),
                amount=-row.amount.data if row.direction.data == "out" else row.amount.data,
                cheque_number=(row.cheque_number.data or "").strip() if row.direction.data == "out" else "",
            )
            for row in (entry.form for entry in self.items)
            if not row.is_blank()
        ]

    def add_rows(self) -> None:
        for _ in range(CARRIED_ROWS):
            if len(self.items) < books.MAX_CARRIED_ITEMS:
                self.items.append_entry()


class ActionForm(SingleLineForm):
    name = StringField("Nom de l'action", validators=[DataRequired(REQUIRED), Length(max=100)])
    submit = SubmitField("Créer l'action")


class RenameActionForm(SingleLineForm):
    name = StringField("Nouveau nom", validators=[DataRequired(REQUIRED), Length(max=100)])


class ConfirmForm(SingleLineForm):
    """An empty form: only the CSRF token, for confirmations and one-click actions."""


class ArchiveActionForm(SingleLineForm):
    """Archive (1) or restore (0) an action: the wanted state, so that a double click changes nothing more."""

    archive = HiddenField(default="1")


class ImportForm(SingleLineForm):
    file = FileField("Fichier du cahier (CSV)", validators=[FileRequired("Choisissez un fichier CSV.")])
    submit = SubmitField("Importer")


class VoucherForm(SingleLineForm):
    file = FileField(
        "Pièce justificative (PDF, JPEG ou PNG, 10 Mo au plus)", validators=[FileRequired("Choisissez un fichier.")]
    )
    submit = SubmitField("Ajouter ce justificatif")
