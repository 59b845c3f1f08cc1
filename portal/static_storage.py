"""Static files as production serves them (after `manage.py collectstatic`, WHITENOISE_USE_FINDERS=0)."""

from whitenoise.storage import CompressedManifestStaticFilesStorage  # type: ignore[import-untyped]


class ManifestStaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed names, gzip and brotli copies (WhiteNoise then serves them for a year, immutable).
    The upload page's ES modules import each other (`import … from "./api.js"`): Django rewrites
    those imports to the hashed names too, so a deploy never mixes one release's page.js with
    another's api.js, and every module is loaded under one URL (one instance of each class)."""

    support_js_module_import_aggregation = True
