"""`servewise config show`: the settings in force and where each value came from."""

from __future__ import annotations

import typer

from gitops.outbound import redact
from server.config import config_path, load_settings
from server.output import JSON_OPTION, console, run, table

config_app = typer.Typer(help="Show servewise's settings (config file + SERVEWISE_* variables, which win).",
                         no_args_is_help=True)


@config_app.command("show")
def show(json_out: bool = JSON_OPTION) -> None:
    """Print every setting, its value and its origin (default, config file or environment variable).

    The config file is $XDG_CONFIG_HOME/servewise/config.toml (or $SERVEWISE_CONFIG); any key can be
    overridden with SERVEWISE_<KEY>, e.g. SERVEWISE_PROVIDER=coreweave. Secrets are never stored in
    settings, only the names of the variables or files that hold them.

    Example:  SERVEWISE_PROVIDER=coreweave servewise config show
    """

    def action() -> dict:
        settings, origin = load_settings()
        values = {k: redact(v) if isinstance(v, str) else v for k, v in settings.model_dump(mode="json").items()}
        return {"config_file": str(config_path()),
                "settings": {k: {"value": values[k], "from": origin[k]} for k in values}}

    def human(r: dict) -> None:
        console.print(table(f"servewise settings (config file: {r['config_file']})", ["key", "value", "from"],
                            [(k, v["value"], v["from"]) for k, v in r["settings"].items()]))

    run(json_out, action, human)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
