"""English and Swahili for the hosted page, and a payment's failure in plain words.

The language is `?lang=` (the switch on the page), else the browser's Accept-Language, else English.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = {"en": "English", "sw": "Kiswahili"}

SWAHILI = {
    "Pay with M-Pesa": "Lipa kwa M-Pesa",
    "Amount": "Kiasi",
    "Amount (KES {low} to {high})": "Kiasi (KES {low} hadi {high})",
    "M-Pesa phone number": "Nambari ya simu ya M-Pesa",
    "For example 0712 345 678": "Kwa mfano 0712 345 678",
    "Pay": "Lipa",
    "Try again": "Jaribu tena",
    "Cancel and return to the shop": "Ghairi na urudi dukani",
    "Check your phone": "Angalia simu yako",
    "Enter your M-Pesa PIN on your phone ({phone}) to pay {amount}.": (
        "Weka PIN yako ya M-Pesa kwenye simu ({phone}) ili ulipe {amount}."
    ),
    "This page updates by itself.": "Ukurasa huu unajisasisha wenyewe.",
    "Payment received": "Malipo yamepokelewa",
    "M-Pesa receipt": "Risiti ya M-Pesa",
    "Continue": "Endelea",
    "Taking you back to the shop…": "Tunakurudisha dukani…",
    "This payment link has expired.": "Kiungo hiki cha malipo kimeisha muda wake.",
    "Return to the shop": "Rudi dukani",
    "This payment link is no longer active.": "Kiungo hiki cha malipo hakitumiki tena.",
    "This payment link has taken all the payments it was set up for.": (
        "Kiungo hiki cha malipo kimeshapokea malipo yote kilichowekwa kupokea."
    ),
    "Sorry — please ask whoever shared it for a new one.": "Samahani — tafadhali omba kipya kwa aliyekutumia.",
    "Payment not completed": "Malipo hayakukamilika",
    "You cancelled the payment on your phone.": "Ulighairi malipo kwenye simu yako.",
    "There is not enough money in your M-Pesa account.": "Hakuna pesa za kutosha kwenye akaunti yako ya M-Pesa.",
    "The prompt timed out before a PIN was entered.": "Muda wa ombi uliisha kabla ya kuweka PIN.",
    "The M-Pesa PIN was wrong.": "PIN ya M-Pesa haikuwa sahihi.",
    "The payment did not go through.": "Malipo hayakufanikiwa.",
    "This page cannot be opened: the link is incomplete or wrong.": (
        "Ukurasa huu hauwezi kufunguliwa: kiungo hakijakamilika au si sahihi."
    ),
    "Not available": "Haipatikani",
    "Reference": "Kumbukumbu",
    "Enter a Kenyan mobile number, such as 0712 345 678.": "Weka nambari ya simu ya Kenya, kama 0712 345 678.",
    "Enter an amount from KES {low} to {high}.": "Weka kiasi kati ya KES {low} na {high}.",
    "Too many payment requests to this phone. Wait a few minutes and try again.": (
        "Maombi mengi mno ya malipo kwa simu hii. Subiri dakika chache kisha ujaribu tena."
    ),
    "A payment prompt is already on its way to this phone. Check your phone.": (
        "Ombi la malipo tayari linaelekea simu hii. Angalia simu yako."
    ),
    "This payment is already complete.": "Malipo haya tayari yamekamilika.",
}

# The refusal's code -> what the customer reads (other refusals show the bridge's message).
REFUSALS = {
    "invalid_phone": "Enter a Kenyan mobile number, such as 0712 345 678.",
    "amount_out_of_range": "Enter an amount from KES {low} to {high}.",
    "invalid_amount": "Enter an amount from KES {low} to {high}.",
    "parameter_missing": "Enter an amount from KES {low} to {high}.",
    "rate_limited": "Too many payment requests to this phone. Wait a few minutes and try again.",
    "phone_busy": "A payment prompt is already on its way to this phone. Check your phone.",
    "duplicate_in_flight": "A payment prompt is already on its way to this phone. Check your phone.",
    "checkout_session_payment_in_progress": "A payment prompt is already on its way to this phone. Check your phone.",
    "checkout_session_complete": "This payment is already complete.",
    "checkout_session_expired": "This payment link has expired.",
}

# failure_code (core/payments/result_codes.py) -> what the customer reads
FAILURES = {
    "user_cancelled": "You cancelled the payment on your phone.",
    "insufficient_funds": "There is not enough money in your M-Pesa account.",
    "timeout": "The prompt timed out before a PIN was entered.",
    "wrong_pin": "The M-Pesa PIN was wrong.",
}


def failure_words(status: str, code: str | None) -> str:
    if code in FAILURES:
        return FAILURES[code]
    if status == "cancelled":
        return FAILURES["user_cancelled"]
    if status == "expired":
        return FAILURES["timeout"]
    return "The payment did not go through."


def choose(asked: str | None, accept_language: str | None) -> str:
    if asked in LANGUAGES:
        return asked
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "en"


def translator(language: str) -> Callable[..., str]:
    words = SWAHILI if language == "sw" else {}

    def t(text: str, /, **values: object) -> str:
        found = words.get(text, text)
        return found.format(**values) if values else found

    return t
