//! The names sign-offs carry: devices, systems and mail apps, and the sign-off and
//! attribution words of languages the table does not have in full.

/// Words that name a phone, a tablet or a mail app, in the languages above: a sign-off
/// names one. Matched as the start of a word, so "iPhonesta" (Finnish) and "iPhone-omról"
/// (Hungarian) count.
pub const DEVICES: &[&str] = &[
    // Makers, systems and apps
    "iphon",
    "ipad",
    "ipod",
    "apple watch",
    "android",
    "ios",
    "samsung",
    "galaxy",
    "huawei",
    "honor",
    "xiaomi",
    "redmi",
    "oneplus",
    "oppo",
    "vivo",
    "nokia",
    "motorola",
    "sony",
    "xperia",
    "lg",
    "htc",
    "blackberry",
    "windows",
    "outlook",
    "yahoo",
    "gmail",
    "aol",
    "proton",
    "protonmail",
    "tutanota",
    "tuta",
    "bluemail",
    "typeapp",
    "aquamail",
    "k-9",
    "fairemail",
    "spark",
    "airmail",
    "newton",
    "edison",
    "spike",
    "mail.ru",
    "яндекс",
    "yandex",
    "mail",
    "mobile",
    "mobil",
    "smartphone",
    // "phone", "device", "tablet" in the listed languages
    "phone",
    "device",
    "tablet",
    "téléphone",
    "portable",
    "mobile",
    "appareil",
    "tablette",
    "handy",
    "telefon",
    "gerät",
    "tablet",
    "móvil",
    "movil",
    "teléfono",
    "celular",
    "dispositivo",
    "telemóvel",
    "telemovel",
    "cellulare",
    "telefonino",
    "telefoon",
    "apparaat",
    "mobiel",
    "mobiltelefon",
    "enhed",
    "enhet",
    "mobiili",
    "puhelin",
    "laite",
    "laitteesta",
    "telefonu",
    "urządzenia",
    "urządzenie",
    "komórki",
    "mobilu",
    "zařízení",
    "telefonu",
    "telefonomról",
    "készülék",
    "eszköz",
    "dispozitiv",
    "telefonul",
    "cihaz",
    "telefonumdan",
    "κινητό",
    "συσκευή",
    "τηλέφωνο",
    "телефона",
    "телефон",
    "мобильного",
    "устройства",
    "смартфона",
    "мобільного",
    "пристрою",
    "телефону",
    "هاتف",
    "جهاز",
    "جوال",
    "טלפון",
    "מכשיר",
    "携帯",
    "スマートフォン",
    "手机",
    "手機",
    "平板",
    "휴대폰",
    "갤럭시",
    "điện thoại",
    "thiết bị",
];

/// Attribution verbs of languages the table above does not have in full (their clients' other
/// words are recognised by shape, in `reply_text::shapes`). They only ever raise confidence in a
/// line that already has an attribution's shape.
pub const MORE_WROTE: &[&str] = &[
    "menulis",     // Indonesian, Malay
    "نوشت",        // Persian
    "ने लिखा",      // Hindi
    "लिखा",        // Hindi
    "เขียนว่า",      // Thai
    "va escriure", // Catalan
    "je napisao",  // Croatian, Serbian, Bosnian
    "je napisala", //
    "napisao je",  //
    "napísal",     // Slovak
    "je napisal",  // Slovenian
    "написа",      // Bulgarian
    "rašė",        // Lithuanian
    "rakstīja",    // Latvian
    "kirjutas",    // Estonian
    "skrifaði",    // Icelandic
    "aliandika",   // Swahili
    "লিখেছেন",     // Bengali
    "نے لکھا",     // Urdu
    "sumulat",     // Filipino
];

/// How a phone's or an app's sign-off begins in languages the table does not have in full.
pub const MORE_SENT_FROM: &[&str] = &[
    "dikirim dari",      // Indonesian
    "dihantar dari",     // Malay
    "ارسال شده از",      // Persian
    "ส่งจาก",             // Thai
    "enviat des de",     // Catalan
    "enviat des del",    //
    "poslano s",         // Croatian, Slovenian
    "poslano iz",        //
    "odoslané z",        // Slovak
    "изпратено от",      // Bulgarian
    "послато са",        // Serbian
    "išsiųsta iš",       // Lithuanian
    "nosūtīts no",       // Latvian
    "saadetud",          // Estonian
    "sent úr",           // Icelandic
    "imetumwa kutoka",   // Swahili
    "ipinadala mula sa", // Filipino
];

/// How such a sign-off ends, device first, in those languages.
pub const MORE_SENT_FROM_SUFFIX: &[&str] = &["से भेजा गया", "से भेजा", "থেকে পাঠানো", "سے بھیجا گیا"];

/// Mail apps and providers whose name a sign-off carries ("Sent with BlueMail", "Yahoo Mail
/// on Android"): with a platform ([`PLATFORMS`]) on a short line, that is a sign-off in any
/// language and word order. Matched at the start of a word, case-insensitively.
pub const APPS: &[&str] = &[
    "outlook",
    "gmail",
    "yahoo",
    "aol",
    "proton",
    "tutanota",
    "tuta mail",
    "bluemail",
    "typeapp",
    "aquamail",
    "k-9",
    "fairemail",
    "spark",
    "airmail",
    "edison",
    "spike",
    "newton",
    "mail.ru",
    "yandex",
    "яндекс",
    "ukr.net",
    "i.ua",
    "onet",
    "interia",
    "wp poczta",
    "o2 poczta",
    "seznam",
    "freemail",
    "citromail",
    "gmx",
    "web.de",
    "t-online",
    "mail orange",
    "libero",
    "virgilio",
    "naver",
    "네이버",
    "daum",
    "다음",
    "网易",
    "qq邮箱",
    "qq mail",
    "foxmail",
    "139邮箱",
    "zoho",
    "mail.com",
    "icloud",
    "superhuman",
    "thunderbird",
    "samsung email",
    "samsung mail",
    "yahoo!メール",
    "ドコモメール",
    "mailbird",
    "emclient",
    "em client",
];

/// Systems and devices a sign-off names after an app ("… for Android", "… para iOS").
pub const PLATFORMS: &[&str] = &[
    "android",
    "ios",
    "ipados",
    "iphone",
    "ipad",
    "windows",
    "macos",
    "mac",
    "wear os",
    "harmonyos",
    "galaxy",
    "huawei",
    "xiaomi",
    "pixel",
];
