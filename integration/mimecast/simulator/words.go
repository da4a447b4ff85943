package simulator

// Word lists the generated archive draws from. They are fixed so that a seed always yields
// the same domains, people, subjects and bodies. Bodies use ordinary words so full-text
// tests have something to search for; every message also carries one unique body token.

var companyWords = []string{
	"northwind", "bluefjord", "kestrel", "ironbark", "meridian", "halcyon", "copperleaf",
	"stonebridge", "lumenfield", "marigold", "oakhaven", "silverline", "tidewater",
	"redwood", "brightwater", "foxglove",
}

var partnerDomains = []string{
	"partner-logistics.example", "supplier-one.example", "auditfirm.example",
	"lawoffice.example", "customer-co.example", "newsletter.example",
}

var firstNames = []string{
	"alice", "bruno", "chloe", "dmitri", "elena", "farid", "greta", "hiro", "ines", "jonas",
	"keiko", "liam", "maya", "nils", "olga", "pedro", "quinn", "rosa", "sven", "tara",
	"umar", "vera", "wei", "xenia", "yusuf", "zoe",
}

var lastNames = []string{
	"adler", "baker", "costa", "dubois", "eriksen", "fischer", "garcia", "hansen", "ito",
	"jensen", "kowalski", "larsen", "moreau", "nakamura", "okafor", "petrov", "quist",
	"rossi", "schmidt", "tanaka", "ueda", "vogel", "weber", "yamada", "zimmermann",
}

// bodyWords are plain ASCII words; full-text tests search for them.
var bodyWords = []string{
	"invoice", "quarterly", "report", "meeting", "agenda", "budget", "forecast", "contract",
	"renewal", "shipment", "warehouse", "delivery", "schedule", "review", "approval",
	"proposal", "customer", "supplier", "payment", "receipt", "project", "milestone",
	"deadline", "workshop", "training", "security", "password", "backup", "server",
	"migration", "archive", "compliance", "audit", "policy", "holiday", "travel",
	"expense", "reimbursement", "hiring", "interview", "onboarding", "feedback",
	"roadmap", "release", "launch", "marketing", "campaign", "newsletter", "webinar",
	"conference", "partner", "pricing", "discount", "order", "quote", "tender",
	"lighthouse", "harbour", "glacier", "orchard", "meadow", "canyon", "lagoon",
	"pelican", "falcon", "otter", "badger", "walrus", "saffron", "cinnamon", "juniper",
	"amber", "cobalt", "crimson", "indigo", "velvet", "granite", "marble", "quartz",
}

var subjectTopics = []string{
	"Quarterly report", "Meeting notes", "Invoice", "Contract renewal", "Shipment update",
	"Budget review", "Project milestone", "Workshop invitation", "Travel plans",
	"Security notice", "Release planning", "Customer feedback", "Expense claim",
	"Pricing proposal", "Audit preparation", "Onboarding checklist",
}

// nonASCIISubjects exercise RFC 2047 encoded words in several scripts.
var nonASCIISubjects = []string{
	"Grüße aus München – Quartalsbericht",
	"Rückmeldung zur Änderung der Öffnungszeiten",
	"会議の議事録について",
	"見積書の送付",
	"🚀 Launch plan and next steps",
	"Café meeting ☕ on Friday",
	"Ελληνικά: σύνοψη έργου",
	"Réunion d'équipe – ordre du jour",
}

// nonASCIILines are mixed into UTF-8 bodies.
var nonASCIILines = []string{
	"Viele Grüße aus Köln, schöne Woche!",
	"よろしくお願いいたします。",
	"Merci beaucoup et à bientôt 🙂",
	"Saludos cordiales, señora Núñez.",
}

// latin1Lines are encodable in ISO-8859-1 and used for the ISO-8859-1 bodies.
var latin1Lines = []string{
	"Grüße aus Köln und schöne Feiertage.",
	"Le café est prêt, à tout à l'heure.",
	"Año nuevo, señor Peña: ¿qué tal?",
}

var asciiFilenames = []string{"report", "minutes", "invoice", "summary", "data", "scan", "notes", "export"}

var nonASCIIFilenames = []string{"Übersicht_März", "報告書", "résumé_équipe", "Ångström_data"}

var mailers = []string{"Microsoft Outlook 16.0", "Thunderbird 128.3", "Apple Mail (2.3774)", "mimesim 1.0"}
