"""Text bank for the bundled support-agent sample: catalog, customers, and wording.

Pure data (no randomness here). ``data/_scenario.py`` picks from these lists
with a seeded ``random.Random`` so the generated sample is byte-identical on
every run. Templates use ``str.format`` slots.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Alice", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kate",
    "Liam", "Maya", "Nikhil", "Olga", "Pedro", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe", "Aaron", "Bea", "Chen", "Dana", "Emeka", "Freya", "Gabe",
    "Hana", "Ivan", "Jo", "Kofi", "Lena", "Marco", "Noor",
)
LAST_NAMES = (
    "Smith", "Garcia", "Chen", "Okafor", "Novak", "Rossi", "Kim", "Patel", "Muller", "Silva",
    "Johnson", "Nguyen", "Haddad", "Kowalski", "Brown", "Tanaka", "Lopez", "Dubois", "Singh",
    "Andersen", "Moreau", "Ivanova", "Costa", "Walker", "Fischer", "Ali", "Murphy", "Sato",
)
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "fastmail.com")
CITIES = (
    ("Portland", "OR", "97205"), ("Austin", "TX", "78701"), ("Denver", "CO", "80202"),
    ("Columbus", "OH", "43215"), ("Raleigh", "NC", "27601"), ("Madison", "WI", "53703"),
    ("Tucson", "AZ", "85701"), ("Boise", "ID", "83702"), ("Richmond", "VA", "23219"),
    ("Omaha", "NE", "68102"), ("Albany", "NY", "12207"), ("Savannah", "GA", "31401"),
    ("Spokane", "WA", "99201"), ("Fresno", "CA", "93721"), ("Burlington", "VT", "05401"),
)
STREETS = (
    "Maple Ave", "Oak Street", "Pine Road", "Cedar Lane", "Elm Court", "Lakeview Drive",
    "Hillcrest Blvd", "Mill Road", "Sunset Terrace", "Park Place", "River Street", "2nd Avenue",
)
CARRIERS = ("UPS", "FedEx", "USPS", "DHL")
PLANS = (("Basic", 9.99), ("Plus", 14.99), ("Premium", 24.99), ("Family", 29.99))
CHANNELS = ("web", "web", "web", "mobile", "mobile", "email")

# product -> (price, known facts by attribute; attributes not listed are not in the KB)
PRODUCTS = {
    "Nimbus X2 headphones": (129.0, {
        "battery": "battery life is up to 30 hours with noise cancelling off (22 hours with it on)",
        "water": "they are rated IPX4, so they handle sweat and light rain but not submersion",
        "warranty": "they come with a 2-year limited warranty",
        "compat": "they pair over Bluetooth 5.3 with any phone, laptop or tablet",
    }),
    "AeroBlend 3000 blender": (189.0, {
        "dishwasher": "the jar and lid are dishwasher-safe (top rack); the motor base is not",
        "warranty": "the motor has a 5-year warranty and the jar 1 year",
        "power": "it has a 1,200 W motor and a 1.8 L jar",
    }),
    "TrailLite 45L backpack": (149.0, {
        "water": "the 420D nylon shell is water-resistant and it ships with a rain cover",
        "warranty": "it is covered by a lifetime warranty against manufacturing defects",
        "size": "it holds 45 litres and weighs 1.2 kg empty",
    }),
    "Lumen desk lamp": (59.0, {
        "power": "it draws 10 W and has a USB-C charging port in the base",
        "warranty": "it has a 1-year warranty",
        "light": "it offers three colour temperatures (2700K, 4000K, 6500K) and stepless dimming",
    }),
    "PulseFit band": (79.0, {
        "battery": "the battery lasts about 7 days per charge",
        "water": "it is water resistant to 5 ATM, fine for swimming in a pool",
        "compat": "it works with iOS 15+ and Android 10+ through the PulseFit app",
    }),
    "BrewMaster kettle": (69.0, {
        "power": "it holds 1.7 L and has five temperature presets from 70 to 100 C",
        "warranty": "it has a 2-year warranty",
        "safety": "it switches off automatically when it boils or if it is lifted off the base",
    }),
    "SnapCam mini": (199.0, {
        "battery": "one battery records about 90 minutes of 4K video",
        "storage": "it takes microSD cards up to 256 GB (U3 recommended)",
        "water": "it is waterproof to 10 m without a case",
    }),
    "VoltGo power bank": (49.0, {
        "battery": "it stores 20,000 mAh and can charge a phone about four times",
        "power": "the USB-C port delivers up to 65 W Power Delivery, enough for most laptops",
    }),
    "ZenMat yoga mat": (45.0, {
        "size": "it is 183 x 61 cm and 6 mm thick",
        "care": "wipe it with mild soap and water; it is not machine-washable",
    }),
    "FrostByte cooler": (119.0, {
        "size": "it holds 30 L, about 40 cans",
        "water": "the lid has a gasket seal and the drain plug is leak-proof",
        "battery": "it is a passive cooler and keeps ice for up to 3 days",
    }),
}

# attribute -> question templates ({p} = product)
PRODUCT_QUESTIONS = {
    "battery": ("How long does the battery last on the {p}?", "what's the battery life of the {p}",
                "Does the {p} last a full day on one charge?", "how many hours of battery does the {p} get?"),
    "water": ("Is the {p} waterproof?", "can I use the {p} in the rain?", "Is the {p} ok to get wet?",
              "how water resistant is the {p}"),
    "warranty": ("What warranty comes with the {p}?", "how long is the warranty on the {p}?",
                 "Is the {p} covered if it breaks after a year?"),
    "compat": ("Does the {p} work with an iPhone?", "Will the {p} work with my Android phone?",
               "is the {p} compatible with my laptop"),
    "dishwasher": ("Can the {p} go in the dishwasher?", "is the {p} dishwasher safe"),
    "power": ("How powerful is the {p}?", "What's the wattage of the {p}?", "can the {p} charge a laptop?"),
    "size": ("How big is the {p}?", "what are the dimensions of the {p}", "How much does the {p} hold?"),
    "light": ("Can I change the colour of the light on the {p}?", "is the {p} dimmable?"),
    "storage": ("What memory card does the {p} take?", "how much storage does the {p} support"),
    "safety": ("Does the {p} turn off by itself?", "is there an auto shut-off on the {p}"),
    "care": ("How do I clean the {p}?", "can I wash the {p}?"),
}
# questions the knowledge base cannot answer (retrieval returns nothing)
UNKNOWN_QUESTIONS = (
    "Does the {p} work with a PS5?", "Can I use the {p} in a sauna?", "Is the {p} made in the USA?",
    "does the {p} come in red?", "Is the {p} safe to take on a plane in carry-on?",
    "Will the {p} work on 220V in Europe?", "is there a newer version of the {p} coming out soon?",
    "Can the {p} be engraved?", "Does the {p} contain latex?", "what's the resale value of the {p}",
)
# confident made-up answers used when retrieval found nothing (hallucinated_no_results)
HALLUCINATED_CLAIMS = (
    "Yes, the {p} is fully compatible with that and it's certified for it, so it will work out of the box.",
    "Absolutely! The {p} is designed for exactly that and is certified safe up to 120 C.",
    "Yes, the {p} is made in our Oregon factory and every unit is hand-tested before it ships.",
    "Great question: the {p} comes in red, navy and forest green, and all three are in stock.",
    "Yes, the {p} is approved for carry-on by the TSA and by all major airlines.",
    "Yes, the {p} works on 110-240V worldwide; you only need a plug adapter.",
    "Yes! A {p} 2 is launching next month and current owners get 40% off the upgrade.",
    "Yes, we offer free laser engraving on the {p} for up to 20 characters.",
    "No, the {p} is 100% latex-free and hypoallergenic, certified by Dermatest.",
    "The {p} keeps about 80% of its value after two years, one of the best in its class.",
)
HALLUCINATED_TAILS = (
    " It also comes with an extended 3-year warranty, so you can buy with confidence!",
    " Plus it's covered by our 3-year warranty, so you can buy with confidence.",
    " You can buy it with total confidence: it has a 3-year warranty.", " Buy with confidence: it's backed by our 3-year warranty.",
    " It's one of our best sellers and has a 3-year warranty, so you can order with confidence!",
)

SHIP_KNOWN = {
    "the US": "Standard shipping in the US takes 3-5 business days ($5.99, free over $50); express is 1-2 days ($14.99).",
    "Canada": "We ship to Canada in 5-8 business days for $12.99; duties are prepaid at checkout.",
    "the UK": "UK orders arrive in 6-9 business days for $19.99 via DHL; VAT is included at checkout.",
    "Germany": "Germany and the rest of the EU take 6-10 business days for $19.99; VAT is included.",
    "Australia": "Australia takes 8-12 business days for $24.99.",
    "Mexico": "Mexico takes 7-10 business days for $14.99; import taxes may apply on delivery.",
}
SHIP_UNKNOWN = ("Iceland", "Brazil", "South Africa", "Japan", "New Zealand", "the Philippines", "Chile")
SHIP_QUESTIONS = (
    "Do you ship to {c}?", "How long does shipping to {c} take?", "how much is shipping to {c}",
    "Can I get express delivery to {c}?", "What are the delivery times for {c}?",
    "If I order today, when would it arrive in {c}?",
)

PROMO_KNOWN = {
    "SPRING25": "SPRING25 gives 25% off full-price items until March 31; it cannot be combined with sale prices.",
    "WELCOME10": "WELCOME10 gives 10% off a first order over $30, once per customer.",
    "FREESHIP": "FREESHIP gives free standard shipping on US orders; it does not apply to express.",
}
PROMO_UNKNOWN = ("VIP40", "FLASH50", "BDAY15", "STUDENT20")
PROMO_QUESTIONS = (
    "The code {code} isn't working at checkout, why?", "Does {code} work on sale items?",
    "i tried {code} and it says invalid", "How much is {code} worth?",
    "Can I use {code} together with free shipping?",
)

OPENERS = ("", "", "", "Hi, ", "Hello, ", "Hey, ", "hi ", "Good morning. ", "Hi there! ", "Hello team, ")
CLOSERS = ("", "", "", " Thanks!", " thanks", " thx", " Thank you.", " Appreciate it.", " Please help.")

ORDER_STATUS = (
    "Where is my order {oid}?", "can you check the status of order {oid}",
    "I ordered the {p} on {day} and it still hasn't arrived. Order number {oid}.",
    "Any update on {oid}? It's been {n} days.", "The tracking for {oid} hasn't moved since {day}.",
    "when will my {p} arrive? order {oid}", "Has order {oid} shipped yet?",
    "I'm still waiting on my {p} ({oid}). What's going on?",
)
REFUND_REQUEST = (
    "I'd like a refund for the {p}, order {oid}. {reason}", "Can I return the {p} and get my money back? {reason}",
    "How do I get a refund for order {oid}? {reason}", "{reason} I want my money back for {oid}.",
    "Is it too late to return the {p}? I got it {n} days ago. Order {oid}.",
    "Please refund order {oid}. {reason}", "What is your refund policy? I want to send back the {p} ({oid}).",
    "I want to return my {p} for a full refund. {reason}",
)
REFUND_REASONS = (
    "It stopped working after a week.", "It's not what I expected.", "It arrived damaged.",
    "The box was crushed and the item is broken.", "I changed my mind.", "It doesn't fit my needs.",
    "Wrong colour was sent.", "I found it cheaper elsewhere.",
)
CHANGE_ADDRESS = (
    "I need to change the shipping address on {oid} to {addr}.", "I moved! Please ship {oid} to {addr} instead.",
    "Wrong address on my order {oid}, it should be {addr}", "Can you update the delivery address for {oid}? New one: {addr}",
    "please send order {oid} to my new place: {addr}",
)
PASSWORD_RESET = (
    "I forgot my password and can't log in.", "reset my password please, my email is {email}",
    "I'm locked out of my account ({email}).", "How do I reset my password?",
    "the password reset email never arrived, can you send another one to {email}?",
    "can't sign in, says wrong password. account {email}", "I need a new password for {email}",
)
CANCEL_SUBSCRIPTION = (
    "Please cancel my {plan} subscription.", "I want to stop being charged for {plan}. Account {email}.",
    "how do i cancel my subscription? email is {email}", "Cancel my membership please, I don't use it anymore.",
    "I'd like to end my {plan} plan before it renews.",
)
BILLING_DISPUTE = (
    "I was charged twice for order {oid}.", "There's a charge of ${amt} on my card for {oid} that I don't recognize.",
    "Why was I billed ${amt} for {oid}? That's not the price I saw.", "double charge on {oid}!! please fix",
    "You charged my card ${amt} twice for order {oid}.",
)
THANKS = (
    "thanks!", "ok great, thank you", "That's all, bye.", "perfect, thanks so much", "ok", "cool thx",
    "Thank you for your help.", "great, that answers it", "alright, thanks",
)
FOLLOW_UP_PREFIX = ("", "", "Also, ", "One more thing: ", "Another question. ", "And ")

# agent replies -----------------------------------------------------------------------------------
# replies are composed from parts (opener + core + consequence + closer) so that each failure
# mode reads as one family of varied answers rather than a handful of fixed sentences
APOLOGY = ("I'm sorry, but", "Sorry,", "Unfortunately", "Apologies,", "I'm afraid", "Hmm,")
REFUND_POLICY_MISSING = (
    "I couldn't find our refund policy", "I don't have access to our refund policy",
    "I wasn't able to find the refund policy in our help center", "I don't know our refund policy for this",
    "the refund policy isn't in my knowledge base", "I can't find any refund policy information",
)
REFUND_CONSEQUENCE = (
    "so I can't confirm whether order {oid} is eligible for a refund.", "so I can't tell you if the {p} can be refunded.",
    "so I'm unable to process a refund for {oid} right now.", "which means I can't promise a refund for {oid}.",
    "so I don't know if a refund is possible for your {p}.",
)
REFUND_CLOSER = ("", "", " You may want to check our website for the refund terms.", " Please try again later.",
                 " Is there anything else I can help with?", " Sorry I can't be more helpful with the refund.")
REFUND_MADE_UP = (
    "Good news: our refund policy lets you return any item within {d} days for a full refund, even if it has been used.",
    "Per our refund policy, refunds are available for {d} days and we also cover the return shipping.",
    "Our refund policy gives you a full refund within {d} days, no questions asked.",
    "Under our refund policy you have {d} days to get a full refund, and opened items are fine too.",
)
REFUND_MADE_UP_CLOSER = (" Just send the {p} back.", " I've noted the refund for {oid}.", " You'll get the refund once it arrives.", "")
REFUND_POLICY_V2 = "Refund policy: full refund within 30 days of delivery; damaged items any time; after 30 days offer store credit."
SYSTEM_PROMPT = {
    "v1": "You are Sam, Acme's support assistant. Be concise. Use the tools; search the knowledge base for product and policy questions.",
    "v2": "You are Sam, Acme's support assistant. Be concise. Use the tools; search the knowledge base for product questions. Escalate account access issues via create_ticket. " + REFUND_POLICY_V2,
}
WRONG_ARGS_ERROR = (
    "I got a validation error: the system rejected the {field} as invalid,",
    "the system returned a validation error saying the {field} is invalid,",
    "my request failed with an invalid {field} validation error,",
    "I hit an error: the system says the {field} I sent is invalid,",
    "the tool call failed with a validation error (invalid {field}),",
)
WRONG_ARGS_CONSEQUENCE = ("so I couldn't {action}.", "so I wasn't able to {action}.", "so I can't {action} right now.",
                          "so I was unable to {action}.")
WRONG_ARGS_ASK = ("Could you double-check it and I'll try again?", "Can you confirm the details and I'll try again?",
                  "Please send it again and I'll retry.", "")
ESCALATE_CORE = (
    "I've escalated your password reset to a human agent on our security team", "I've handed your password reset over to a human agent",
    "I've created a ticket so a human agent can reset your password", "I've passed your password reset to a human agent on our security team",
    "this password reset needs a human agent, so I've escalated it",
)
ESCALATE_WHEN = ("who will contact you within 24-48 hours", "and someone will get back to you within 1-2 business days",
                 "and a human agent will reach out by email within 48 hours", "who will reply within two business days")
ESCALATE_REASON = ("", "", " For security reasons I can't reset passwords myself.", " I'm not able to reset passwords directly.",
                   " Sorry for the wait.")
JUDGE_FAIL_NOTES = {
    "refund_no_policy": "The assistant did not apply the refund policy; it either said it could not find it or stated terms that are not company policy.",
    "wrong_tool_args": "The tool call failed with a validation error caused by malformed arguments and the request was not completed.",
    "hallucinated_no_results": "The knowledge-base search returned no documents, yet the answer states specific facts that are not grounded in any source.",
    "v2_regression": "A routine password reset was escalated to a human instead of being handled with the reset tool.",
    "none": "The answer looks incomplete or unhelpful for the user's request.",
}
JUDGE_PASS_NOTES = (
    "The assistant addressed the request correctly and used the tool results.",
    "Grounded, concise answer that resolves the user's request.",
    "Correct handling; no unsupported claims.",
)
USER_COMMENTS_DOWN = ("useless", "didn't help", "wrong answer", "I still don't have my refund", "this bot is not helpful", "", "", "")
USER_COMMENTS_UP = ("thanks!", "quick and helpful", "", "", "", "")

XSS_MESSAGES = (
    "I copied this from your promo page and the code doesn't work: <script>window.__xss=1</script> SPRING25 - can you check?",
    "The product page shows <img src=x onerror=\"window.__xss=1\"> instead of a photo of the {p}. Is it still in stock?",
    "Pasting the email I got: <style>body{{display:none}}</style> Your order {oid} has shipped! But the tracking shows nothing?",
    "<b>URGENT</b> <img src=x onerror=\"window.__xss=1\"> my discount code isn't applied at checkout",
)
