"""Static files storage: hashed, compressed, and consistent for JS modules."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class ModuleAwareStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Rewrite ``import … from "./x.js"`` to hashed names too.

    The dashboard is plain ES modules; without this, an entry module gets a
    hashed name but the modules it imports are fetched by plain names, and a
    browser could mix old and new files right after a deploy.
    """

    support_js_module_import_aggregation = True
