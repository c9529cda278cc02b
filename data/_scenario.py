"""The story of the bundled sample: who asks what, which turns fail, and how.

Builds format-neutral conversation plans (one per trace): the user's message,
the agent's rounds of tool / retrieval calls and its final answer, plus the
ground truth (intent, failure mode). ``data/_spans.py`` turns plans into spans.
Every random choice goes through one seeded ``random.Random`` in a fixed order.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import _phrases as P

INTENT_WEIGHTS = {
    "order_status": 0.19, "refund_request": 0.145, "change_address": 0.08, "password_reset": 0.10,
    "product_question": 0.18, "shipping_question": 0.07, "cancel_subscription": 0.08,
    "billing_dispute": 0.07, "promo_question": 0.05,
}
TURN_WEIGHTS = (0.40, 0.28, 0.17, 0.10, 0.05)  # sessions of 1..5 turns
# planted failure prevalence per prompt version (share of that version's traces)
PLANTED = {
    "v1": {"refund_no_policy": 0.09, "wrong_tool_args": 0.05, "hallucinated_no_results": 0.04, "v2_regression": 0.0},
    "v2": {"refund_no_policy": 0.0, "wrong_tool_args": 0.05, "hallucinated_no_results": 0.04, "v2_regression": 0.06},
}
ELIGIBLE = {
    "refund_no_policy": ("refund_request",),
    "v2_regression": ("password_reset",),
    "wrong_tool_args": ("order_status", "change_address", "cancel_subscription", "billing_dispute"),
    "hallucinated_no_results": ("product_question",),
}
TOOL_INTENTS = ("order_status", "refund_request", "change_address", "password_reset",
                "cancel_subscription", "billing_dispute")
KB_INTENTS = ("product_question", "shipping_question", "promo_question")


@dataclass
class Call:
    """One tool or retrieval call the agent makes (one span)."""

    name: str
    args: dict
    result: object = None  # JSON-able result, or list of documents for retrieval
    error: tuple[str, str] | None = None  # (exception type, message)
    retrieval: bool = False


@dataclass
class Turn:
    """One trace: a user turn and the agent's handling of it, with its ground truth."""

    session_id: str
    user: dict
    version: str
    start_s: float
    intent: str
    turn_index: int
    channel: str
    failure_mode: str = "none"
    xss_payload: bool = False
    zero_results_ok: bool = False
    transient_error: bool = False
    user_text: str = ""
    rounds: list[list[Call]] = field(default_factory=list)
    answer: str = ""


def _typo(rng: random.Random, text: str) -> str:
    """Swap or drop one letter in a longer word (people type fast)."""
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:] if rng.random() < 0.6 else w[:j] + w[j + 1:]
    return " ".join(words)


def _casual(rng: random.Random, text: str) -> str:
    """Occasional typos, lower case and dropped punctuation, like real chat input."""
    if rng.random() < 0.10:
        text = _typo(rng, text)
    if rng.random() < 0.12:
        text = text.lower()
    if rng.random() < 0.15 and text[-1:] in ".?!":
        text = text[:-1]
    return text


def make_user(rng: random.Random, index: int) -> dict:
    first, last = rng.choice(P.FIRST_NAMES), rng.choice(P.LAST_NAMES)
    city, state, zipcode = rng.choice(P.CITIES)
    return {
        "user_id": f"cust_{10000 + index * 7 + rng.randrange(7):05d}",
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{rng.randrange(1, 99)}@{rng.choice(P.EMAIL_DOMAINS)}",
        "address": {"street": f"{rng.randrange(12, 9800)} {rng.choice(P.STREETS)}", "city": city,
                    "state": state, "postal_code": zipcode},
        "plan": rng.choice(P.PLANS),
    }


def plan_sessions(rng: random.Random, *, week_start_s: float, version: str, n_traces: int,
                  users: list[dict], user_weights: list[float]) -> list[Turn]:
    """Sessions through one week until ``n_traces`` turns exist (the last session may overshoot)."""
    turns: list[Turn] = []
    intents, weights = list(INTENT_WEIGHTS), list(INTENT_WEIGHTS.values())
    while len(turns) < n_traces:
        user = rng.choices(users, weights=user_weights)[0]
        day = rng.randrange(7)
        hour = rng.choices(range(24), weights=[1, 1, 1, 1, 1, 2, 3, 5, 8, 9, 9, 9, 8, 8, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1])[0]
        t = week_start_s + day * 86400 + hour * 3600 + rng.random() * 3600
        session_id = "sess_" + f"{rng.getrandbits(64):016x}"
        channel = rng.choice(P.CHANNELS)
        n_turns = rng.choices(range(1, 6), weights=TURN_WEIGHTS)[0]
        for k in range(n_turns):
            intent = "thanks" if k > 0 and rng.random() < 0.45 else rng.choices(intents, weights=weights)[0]
            turns.append(Turn(session_id, user, version, t, intent, k, channel))
            t += 25 + rng.random() * 300
    turns.sort(key=lambda x: x.start_s)
    return turns


def assign_failures(rng: random.Random, turns: list[Turn], version: str) -> None:
    """Plant exact counts of each failure mode among eligible turns of one version."""
    n = len(turns)
    for mode, rate in PLANTED[version].items():
        target = round(rate * n)
        pool = [t for t in turns if t.intent in ELIGIBLE[mode] and t.failure_mode == "none"]
        if target > len(pool):
            raise RuntimeError(f"{version}: only {len(pool)} turns eligible for {mode}, need {target}")
        for t in rng.sample(pool, target):
            t.failure_mode = mode
    for t in turns:
        if t.failure_mode == "none" and t.intent in KB_INTENTS and rng.random() < 0.10:
            t.zero_results_ok = True
        if t.failure_mode == "none" and t.intent in TOOL_INTENTS and rng.random() < 0.02:
            t.transient_error = True


def _order(rng: random.Random, user: dict, *, delivered_days_ago: int | None = None) -> dict:
    product = rng.choice(list(P.PRODUCTS))
    price = P.PRODUCTS[product][0]
    status = "delivered" if delivered_days_ago is not None else rng.choice(
        ("processing", "shipped", "shipped", "in_transit", "out_for_delivery", "delayed", "delivered"))
    return {"order_id": f"ORD-{rng.randrange(100000, 999999)}", "product": product, "total": price,
            "status": status, "carrier": rng.choice(P.CARRIERS),
            "tracking": f"1Z{rng.getrandbits(40):010X}", "days_ago": delivered_days_ago or rng.randrange(2, 12)}


def _order_mention(rng: random.Random, oid: str) -> str:
    digits = oid[4:]
    return rng.choice((oid, oid, oid, oid.lower(), f"#{digits}", digits))


def _ticket(rng: random.Random) -> str:
    return f"TCK-{rng.randrange(200000, 299999)}"


def _docs(rng: random.Random, texts: list[tuple[str, str]]) -> list[dict]:
    return [{"id": doc_id, "content": text, "score": round(0.88 - 0.11 * i - rng.random() * 0.05, 3)}
            for i, (doc_id, text) in enumerate(texts)]


def _compose(rng: random.Random, *parts: tuple[str, ...], **slots: str) -> str:
    """One choice from each part, joined, slots filled; the first letter capitalised."""
    text = " ".join(p for p in (rng.choice(part) for part in parts) if p).replace("  ", " ").replace(", ,", ",")
    text = text.format(**slots)
    return text[0].upper() + text[1:]


def _wrong_args_reply(rng: random.Random, field_name: str, action: str, system: str) -> str:
    return _compose(rng, P.APOLOGY, P.WRONG_ARGS_ERROR, P.WRONG_ARGS_CONSEQUENCE, P.WRONG_ARGS_ASK,
                    field=field_name, action=action, system=system)


def _validation(field_name: str, got: str, expected: str) -> tuple[str, str]:
    return ("ValidationError", f"{field_name}: expected {expected}, got {got!r}")


def build_order_status(rng, turn, u):
    o = _order(rng, u)
    oid, mention = o["order_id"], _order_mention(rng, o["order_id"])
    turn.user_text = rng.choice(P.ORDER_STATUS).format(oid=mention, p=o["product"], day=rng.choice(
        ("Monday", "Tuesday", "last week", "the 1st", "Friday")), n=rng.randrange(4, 15))
    if turn.failure_mode == "wrong_tool_args":
        bad = mention.lstrip("#").replace("order ", "") if not mention.startswith("ORD") else u["email"]
        call = Call("lookup_order", {"order_id": bad},
                    error=_validation("order_id", bad, "an order number like 'ORD-123456'"))
        turn.rounds = [[call]]
        turn.answer = _wrong_args_reply(rng, "order number", "look up your order", "order system")
        return
    result = {k: o[k] for k in ("order_id", "status", "carrier", "tracking")} | {
        "items": [{"name": o["product"], "qty": 1}], "eta_days": rng.randrange(1, 6)}
    turn.rounds = [[Call("lookup_order", {"order_id": oid}, result)]]
    status_text = {
        "processing": "is still being packed at our warehouse and should ship within 1-2 business days",
        "shipped": f"shipped with {o['carrier']} and should arrive in about {result['eta_days']} days (tracking {o['tracking']})",
        "in_transit": f"is in transit with {o['carrier']}; the current estimate is {result['eta_days']} days (tracking {o['tracking']})",
        "out_for_delivery": "is out for delivery today",
        "delayed": f"is delayed at the {o['carrier']} hub; the new estimate is {result['eta_days'] + 2} days. Sorry about the wait",
        "delivered": f"was delivered {rng.randrange(1, 4)} days ago by {o['carrier']}. If you can't find it, let me know and I'll open a trace with the carrier",
    }[o["status"]]
    turn.answer = f"Your order {oid} ({o['product']}) {status_text}."


def build_refund(rng, turn, u):
    fail = turn.failure_mode == "refund_no_policy"
    damaged = (not fail) if turn.version == "v1" else rng.random() < 0.25
    reasons = [r for r in P.REFUND_REASONS if ("damaged" in r or "broken" in r) == damaged]
    o = _order(rng, u, delivered_days_ago=rng.randrange(2, 45))
    oid = o["order_id"]
    turn.user_text = rng.choice(P.REFUND_REQUEST).format(
        oid=_order_mention(rng, oid), p=o["product"], reason=rng.choice(reasons), n=o["days_ago"]).strip()
    lookup = Call("lookup_order", {"order_id": oid}, {k: o[k] for k in ("order_id", "status", "total")}
                  | {"product": o["product"], "delivered_days_ago": o["days_ago"]})
    refund_call = Call("issue_refund", {"order_id": oid, "amount": o["total"], "reason": "damaged" if damaged else "return"},
                       {"refund_id": f"RF-{rng.randrange(10000, 99999)}", "status": "approved", "amount": o["total"]})
    if turn.version == "v1":
        kb_hits = [] if rng.random() < 0.6 else _docs(rng, [("kb-shipping-01", P.SHIP_KNOWN["the US"])])
        search = Call("search_knowledge_base", {"query": rng.choice(("refund policy", "return and refund policy", "refund eligibility"))},
                      kb_hits, retrieval=True)
        if fail:
            turn.rounds = [[search, lookup]]  # parallel tool calls
            if rng.random() < 0.25:  # or it makes a policy up
                turn.answer = _compose(rng, P.REFUND_MADE_UP, P.REFUND_MADE_UP_CLOSER, oid=oid, p=o["product"],
                                       d=str(rng.choice((45, 60, 90, 120, 365))))
            else:
                turn.answer = _compose(rng, P.APOLOGY, P.REFUND_POLICY_MISSING, P.REFUND_CONSEQUENCE, P.REFUND_CLOSER,
                                       oid=oid, p=o["product"])
            return
        turn.rounds = [[lookup], [refund_call]]
        turn.answer = (f"I'm sorry the {o['product']} arrived damaged. I've issued a full refund of ${o['total']:.2f} "
                       f"(refund {refund_call.result['refund_id']}); it should reach your original payment method in 5-7 business days.")
        return
    if damaged or o["days_ago"] <= 30:
        turn.rounds = [[lookup], [refund_call]]
        turn.answer = (f"Per our refund policy, {'damaged items are refunded at any time' if damaged else 'items can be returned within 30 days of delivery'}"
                       f", so order {oid} qualifies. I've issued a refund of ${o['total']:.2f} (refund {refund_call.result['refund_id']}); "
                       "you'll see it on your original payment method in 5-7 business days.")
    else:
        turn.rounds = [[lookup]]
        turn.answer = (f"Our refund policy covers returns within 30 days of delivery, and order {oid} was delivered {o['days_ago']} days ago, "
                       f"so I can't refund it. I can offer store credit of ${o['total']:.2f} instead. Would you like that?")


def build_change_address(rng, turn, u):
    o = _order(rng, u)
    city, state, zipcode = rng.choice(P.CITIES)
    street = f"{rng.randrange(12, 9800)} {rng.choice(P.STREETS)}"
    turn.user_text = rng.choice(P.CHANGE_ADDRESS).format(oid=_order_mention(rng, o["order_id"]),
                                                          addr=f"{street}, {city}, {state} {zipcode}")
    args = {"order_id": o["order_id"], "street": street, "city": city, "state": state, "postal_code": zipcode}
    if turn.failure_mode == "wrong_tool_args":
        args = args | {"city": zipcode, "postal_code": city}
        turn.rounds = [[Call("update_address", args, error=_validation("postal_code", city, "a 5-digit US ZIP code"))]]
        turn.answer = _wrong_args_reply(rng, "postal code", "update the shipping address", "address service")
        return
    if o["status"] in ("delivered", "out_for_delivery"):
        turn.rounds = [[Call("lookup_order", {"order_id": o["order_id"]}, {"order_id": o["order_id"], "status": o["status"]})]]
        turn.answer = (f"Order {o['order_id']} is already {o['status'].replace('_', ' ')}, so the address can't be changed any more. "
                       "If it comes back to us I'll make sure it is re-sent to the new address.")
        return
    turn.rounds = [[Call("update_address", args, {"ok": True, "order_id": o["order_id"]})]]
    turn.answer = f"Done: order {o['order_id']} will now ship to {street}, {city}, {state} {zipcode}."


def build_password_reset(rng, turn, u):
    turn.user_text = rng.choice(P.PASSWORD_RESET).format(email=u["email"])
    if turn.failure_mode == "v2_regression":
        tid = _ticket(rng)
        turn.rounds = [[Call("create_ticket", {"category": "account_access", "priority": "normal",
                                               "summary": "Customer cannot log in and asks for a password reset"},
                             {"ticket_id": tid, "queue": "security", "sla_hours": 48})]]
        turn.answer = _compose(rng, P.ESCALATE_CORE, (f"(ticket {tid}),",), P.ESCALATE_WHEN, (".",), P.ESCALATE_REASON)
        turn.answer = turn.answer.replace(" .", ".")
        return
    masked = u["email"][0] + "***" + u["email"][u["email"].index("@"):]
    turn.rounds = [[Call("reset_password", {"email": u["email"]}, {"sent": True, "expires_minutes": 30})]]
    turn.answer = rng.choice((
        f"I've sent a password reset link to {masked}. It expires in 30 minutes; check your spam folder if you don't see it.",
        f"Done! A reset link is on its way to {masked}. Follow it within 30 minutes to choose a new password.",
        f"I just sent a new password reset email to {masked}. If it doesn't arrive in a few minutes, check spam or promotions.",
    ))


def build_product_question(rng, turn, u):
    product = rng.choice(list(P.PRODUCTS))
    facts = P.PRODUCTS[product][1]
    query_p = product.split(" ")[0] if rng.random() < 0.3 else product
    if turn.failure_mode == "hallucinated_no_results" or turn.zero_results_ok:
        k = rng.randrange(len(P.UNKNOWN_QUESTIONS))
        turn.user_text = P.UNKNOWN_QUESTIONS[k].format(p=query_p)
        turn.rounds = [[Call("search_knowledge_base", {"query": turn.user_text.rstrip("?")}, [], retrieval=True)]]
        if turn.zero_results_ok:
            turn.answer = (f"I couldn't find anything in our help center about that for the {product}, so I'd rather not guess. "
                           f"I've asked our product team (ticket {_ticket(rng)}) and they'll email you an answer within 2 business days.")
        else:
            turn.answer = P.HALLUCINATED_CLAIMS[k].format(p=product) + rng.choice(P.HALLUCINATED_TAILS)
        return
    attr = rng.choice(list(facts))
    turn.user_text = rng.choice(P.PRODUCT_QUESTIONS[attr]).format(p=query_p)
    other = [a for a in facts if a != attr][:1]
    docs = _docs(rng, [(f"kb-{product.split()[0].lower()}-{attr}", f"{product}: {facts[attr]}.")]
                 + [(f"kb-{product.split()[0].lower()}-{a}", f"{product}: {facts[a]}.") for a in other])
    turn.rounds = [[Call("search_knowledge_base", {"query": turn.user_text.rstrip("?")}, docs, retrieval=True)]]
    turn.answer = rng.choice(("According to the {p} product page, {f}.", "Good question! For the {p}, {f}.",
                              "From our product guide: {f}.")).format(p=product, f=facts[attr])


def build_shipping_question(rng, turn, u):
    known = not turn.zero_results_ok
    country = rng.choice(list(P.SHIP_KNOWN)) if known else rng.choice(P.SHIP_UNKNOWN)
    turn.user_text = rng.choice(P.SHIP_QUESTIONS).format(c=country)
    docs = _docs(rng, [("kb-shipping-intl", P.SHIP_KNOWN[country])]) if known else []
    turn.rounds = [[Call("search_knowledge_base", {"query": f"shipping to {country}"}, docs, retrieval=True)]]
    turn.answer = (f"Yes, we ship there. {P.SHIP_KNOWN[country]}" if known else
                   f"I couldn't find shipping information for {country} in our help center, so I don't want to guess. "
                   "Our logistics team can confirm; I've asked them to reply to you by email.")


def build_promo_question(rng, turn, u):
    known = not turn.zero_results_ok
    code = rng.choice(list(P.PROMO_KNOWN)) if known else rng.choice(P.PROMO_UNKNOWN)
    turn.user_text = rng.choice(P.PROMO_QUESTIONS).format(code=code)
    docs = _docs(rng, [("kb-promo-" + code.lower(), P.PROMO_KNOWN[code])]) if known else []
    turn.rounds = [[Call("search_knowledge_base", {"query": f"promo code {code}"}, docs, retrieval=True)]]
    turn.answer = (f"{P.PROMO_KNOWN[code]} If it still fails, make sure there are no spaces around the code." if known else
                   f"I couldn't find the code {code} in our current promotions, so it may have expired. I can't apply it, sorry.")


def build_cancel_subscription(rng, turn, u):
    plan, price = u["plan"]
    sub_id = f"SUB-{rng.randrange(1000, 9999)}"
    turn.user_text = rng.choice(P.CANCEL_SUBSCRIPTION).format(plan=plan, email=u["email"])
    lookup = Call("lookup_subscription", {"email": u["email"]},
                  {"subscription_id": sub_id, "plan": plan, "price": price, "renews_in_days": rng.randrange(1, 28)})
    if turn.failure_mode == "wrong_tool_args":
        bad = rng.choice((u["email"], plan))
        turn.rounds = [[lookup], [Call("cancel_subscription", {"subscription_id": bad},
                                       error=_validation("subscription_id", bad, "an id like 'SUB-1234'"))]]
        turn.answer = _wrong_args_reply(rng, "subscription ID", "cancel your subscription", "billing system")
        return
    turn.rounds = [[lookup], [Call("cancel_subscription", {"subscription_id": sub_id},
                                   {"status": "cancelled", "access_until_days": lookup.result["renews_in_days"]})]]
    turn.answer = (f"Your {plan} subscription ({sub_id}) is cancelled. You won't be charged ${price:.2f} again, and you keep "
                   f"access for the next {lookup.result['renews_in_days']} days.")


def build_billing_dispute(rng, turn, u):
    o = _order(rng, u)
    amt = f"{o['total']:.2f}"
    turn.user_text = rng.choice(P.BILLING_DISPUTE).format(oid=_order_mention(rng, o["order_id"]), amt=amt)
    if turn.failure_mode == "wrong_tool_args":
        turn.rounds = [[Call("lookup_invoice", {"order_id": amt, "amount": o["order_id"]},
                             error=_validation("order_id", amt, "an order number like 'ORD-123456'"))]]
        turn.answer = _wrong_args_reply(rng, "order number", "check the charges on your order", "billing system")
        return
    tid = _ticket(rng)
    charges = [{"amount": o["total"], "status": "captured"}, {"amount": o["total"], "status": "captured"}]
    turn.rounds = [[Call("lookup_invoice", {"order_id": o["order_id"]}, {"order_id": o["order_id"], "charges": charges}),
                    Call("create_ticket", {"category": "billing", "priority": "high", "summary": f"Duplicate charge on {o['order_id']}"},
                         {"ticket_id": tid, "queue": "billing", "sla_hours": 48})]]
    turn.answer = (f"I can see two charges of ${amt} for order {o['order_id']}. I've opened billing ticket {tid} so the duplicate "
                   "is reversed; you'll get a confirmation email within 2 business days.")


def build_thanks(rng, turn, u):
    turn.user_text = rng.choice(P.THANKS)
    turn.answer = rng.choice(("You're welcome! Have a great day.", "Happy to help. Anything else, just ask!",
                              "Glad I could help!", "You're welcome, take care!"))


BUILDERS = {
    "order_status": build_order_status, "refund_request": build_refund, "change_address": build_change_address,
    "password_reset": build_password_reset, "product_question": build_product_question,
    "shipping_question": build_shipping_question, "promo_question": build_promo_question,
    "cancel_subscription": build_cancel_subscription, "billing_dispute": build_billing_dispute, "thanks": build_thanks,
}


def write_conversation(rng: random.Random, turn: Turn) -> None:
    """Fill in the user's text, the agent's calls and its answer for one turn."""
    BUILDERS[turn.intent](rng, turn, turn.user)
    if turn.intent != "thanks":
        prefix = rng.choice(P.OPENERS) if turn.turn_index == 0 else rng.choice(P.FOLLOW_UP_PREFIX)
        turn.user_text = _casual(rng, prefix + turn.user_text + (rng.choice(P.CLOSERS) if turn.turn_index == 0 else ""))
    if turn.transient_error and turn.rounds:
        first = turn.rounds[0][0]
        timeout = Call(first.name, first.args, error=("TimeoutError", f"{first.name}: upstream service did not answer within 5000 ms"))
        turn.rounds.insert(0, [timeout])


XSS_INTENTS = ("promo_question", "product_question", "order_status", "promo_question")


def plant_xss(rng: random.Random, turns: list[Turn]) -> None:
    """Replace the user text of a few healthy turns with pasted HTML (for the browser XSS test)."""
    taken: set[int] = set()
    for k, intent in enumerate(XSS_INTENTS):
        pool = [i for i, t in enumerate(turns) if t.intent == intent and t.failure_mode == "none"
                and not t.transient_error and not t.zero_results_ok and i not in taken]
        i = rng.choice(pool)
        taken.add(i)
        t = turns[i]
        t.xss_payload = True
        product = rng.choice(list(P.PRODUCTS))
        oid = t.rounds[0][0].args["order_id"] if intent == "order_status" else ""
        t.user_text = P.XSS_MESSAGES[k].format(p=product, oid=oid)
        if k == 0:  # the agent quotes the pasted text back
            t.answer = ('I see you pasted "<script>window.__xss=1</script> SPRING25" - some page code came along with it. '
                        "Type just SPRING25 at checkout. " + P.PROMO_KNOWN["SPRING25"])
        elif k == 1:
            t.rounds = []
            t.answer = f"Yes, the {product} is in stock and ships within 1 business day. Sorry about the broken image; I've reported it to our web team."
        elif k == 3:
            t.rounds = []
            t.answer = "I can't tell which code you used from that. Could you type the discount code here? Note that codes can't be combined with sale prices."


def dumps(value: object) -> str:
    """Compact, deterministic JSON text."""
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
