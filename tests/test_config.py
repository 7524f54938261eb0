"""Config: defaults, one line per problem naming the key, and an example kept in step."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from starsort import config
from starsort.cli import cli

ROOT = Path(__file__).parent.parent


def test_with_no_config_file_the_defaults_follow_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    cfg, source = config.load(None)
    assert source is None
    assert cfg.inboxes == [tmp_path / "Pictures/starsort/inbox"]
    assert cfg.library == tmp_path / "Pictures/starsort/library"
    assert cfg.database == tmp_path / "state/starsort/starsort.db"
    assert (cfg.mode, cfg.settle_seconds, cfg.rescan_interval) == ("move", 2.0, 60.0)


def test_the_default_config_file_is_read_from_xdg_config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "starsort").mkdir()
    (tmp_path / "starsort/config.yaml").write_text("inboxes: [/srv/in]\nlibrary: /srv/lib\nmode: copy\n")
    cfg, source = config.load(None)
    assert source == tmp_path / "starsort/config.yaml"
    assert cfg.inboxes == [Path("/srv/in")] and cfg.mode == "copy"


def test_every_problem_gets_its_own_line_naming_the_key():
    with pytest.raises(config.ConfigError) as e:
        config.parse({"mode": "mv", "settle_seconds": -1, "faces": {"min_size": "big"},
                      "stars": {"mapping": [[50, 3], [10, 5]]}, "libary": "/x"}, "c.yaml")
    keys = [line.split(":")[0] for line in e.value.problems]
    assert sorted(keys) == ["faces.min_size", "libary", "mode", "settle_seconds", "stars.mapping"]


@pytest.mark.parametrize("data,expected", [
    ({"inboxes": ["/p/in"], "library": "/p/in/lib"}, "library: /p/in/lib is inside inboxes[0]"),
    ({"inboxes": ["/p/a", "/p/lib/in"], "library": "/p/lib"}, "inboxes[1]: /p/lib/in is inside the library"),
    ({"inboxes": ["/p/same"], "library": "/p/same"}, "library: /p/same is inside inboxes[0]"),
])
def test_a_library_and_an_inbox_that_nest_are_refused(data, expected):
    with pytest.raises(config.ConfigError) as e:
        config.parse(data)
    assert any(p.startswith(expected) for p in e.value.problems)


def test_config_check_exits_2_with_one_line_per_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: mv\nworkers: 0\ninboxes: [/x/in]\nlibrary: /x/in/lib\n")
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{bad}: ") for line in lines)
    assert {line.split(": ")[1] for line in lines} == {"mode", "workers", "library"}


def test_run_refuses_a_bad_config_with_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inboxes: [/x/in]\nlibrary: /x/in\n")
    result = CliRunner().invoke(cli, ["run", "--once", "--config", str(bad)])
    assert result.exit_code == 2
    assert "library" in result.output


def test_unparseable_yaml_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inboxes: [unclosed\n")
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2 and "YAML" in result.output


def test_the_checked_in_example_is_what_the_schema_generates():
    assert (ROOT / "config/example.yaml").read_text() == config.render_example(), \
        "config/example.yaml is stale: run `make example`"


def test_the_example_documents_every_key_and_validates():
    text = config.render_example()
    data = yaml.safe_load(text)
    config.parse(data)

    def keys(model, prefix=""):
        for name, field in model.model_fields.items():
            sub = field.annotation
            if isinstance(sub, type) and issubclass(sub, config.Section):
                yield from keys(sub, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}"

    def present(d, dotted):
        for part in dotted.split("."):
            d = d[part]
        return True

    for k in keys(config.Config):
        assert present(data, k), k
    assert text.count("\n# ") + text.count("  # ") > len(list(keys(config.Config)))


def test_every_cli_command_has_help():
    def walk(cmd):
        yield cmd
        for sub in getattr(cmd, "commands", {}).values():
            yield from walk(sub)
    for cmd in walk(cli):
        assert cmd.help, f"{cmd.name} is missing its help"


def test_the_xmp_keys_of_issue_6_have_the_documented_defaults():
    x = config.parse({}).xmp
    assert (x.sidecar_naming, x.pick_label, x.rate_rejects_as, x.xmp_in_jpeg) == ("adobe", "Green", 1, False)


@pytest.mark.parametrize("old,new", [("adobe", "adobe"), ("darktable", "ext"), ("both", "both")])
def test_a_config_with_the_old_naming_key_still_loads(old, new):
    assert config.parse({"xmp": {"naming": old}}).xmp.sidecar_naming == new


def test_rate_in_place_is_a_mode_and_bad_xmp_values_are_refused_by_key():
    assert config.parse({"mode": "rate-in-place"}).mode == "rate-in-place"
    with pytest.raises(config.ConfigError) as e:
        config.parse({"xmp": {"sidecar_naming": "darktable-ish", "rate_rejects_as": 0, "pick_label": " "}})
    keys = sorted(line.split(":")[0] for line in e.value.problems)
    assert keys == ["xmp.pick_label", "xmp.rate_rejects_as", "xmp.sidecar_naming"]


def test_the_service_and_a_shell_resolve_the_same_database_whatever_systemd_exports(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    shell, _ = config.load(None)
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / ".config" / "starsort"))   # systemd < 254
    service, _ = config.load(None)
    assert service.database == shell.database == tmp_path / ".local/state/starsort/starsort.db"


def test_a_database_left_where_older_systemd_kept_it_is_found_by_the_service_and_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    legacy = tmp_path / ".config" / "starsort" / "starsort.db"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"")
    cfg, _ = config.load(None)
    assert cfg.database == legacy and not config.database_explicit(cfg)


def test_status_without_a_database_names_every_path_it_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    r = CliRunner().invoke(cli, ["status"])
    assert r.exit_code == 1
    assert str(tmp_path / ".local/state/starsort/starsort.db") in r.output
    assert str(tmp_path / ".config/starsort/starsort.db") in r.output


def test_a_misspelt_key_is_named_with_the_key_it_was_meant_to_be(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("settle_secnds: 2\nblur:\n  treshold: 3\n")
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert sorted(result.output.strip().splitlines()) == [
        f"{bad}: blur.treshold: unknown key; did you mean threshold?",
        f"{bad}: settle_secnds: unknown key; did you mean settle_seconds?",
    ]


def test_a_bad_value_is_echoed_back(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: mv\n")
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2 and "(got 'mv')" in result.output


def test_a_yaml_syntax_error_names_the_file_and_the_line_an_editor_shows(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inboxes: [/x/in]\nlibrary: /x/lib\nmode: [unclosed\n")
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert result.output.startswith(f"{bad}:3: YAML syntax: ") and "<unicode string>" not in result.output


def test_config_check_warns_of_a_missing_inbox_and_refuses_a_library_on_an_absent_disk(tmp_path, monkeypatch):
    from starsort import paths
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"inboxes: [{tmp_path / 'card' / 'DCIM'}]\nlibrary: {tmp_path / 'lib'}\n")
    ok = CliRunner().invoke(cli, ["config", "check", str(cfg)])
    assert ok.exit_code == 0
    assert f"warning: inboxes[0]: {tmp_path / 'card' / 'DCIM'} does not exist (yet)" in ok.output
    assert not (tmp_path / "card").exists()

    cfg.write_text(f"inboxes: [{tmp_path}/in]\nlibrary: {tmp_path / 'new' / 'rated'}\n")
    assert CliRunner().invoke(cli, ["config", "check", str(cfg)]).exit_code == 0   # an ordinary new folder

    (tmp_path / "media" / "you").mkdir(parents=True)
    monkeypatch.setattr(paths, "MOUNT_ROOTS", (tmp_path / "media",))
    cfg.write_text(f"inboxes: [{tmp_path}/in]\nlibrary: {tmp_path / 'media' / 'you' / 'NAS' / 'photos'}\n")
    bad = CliRunner().invoke(cli, ["config", "check", str(cfg)])
    assert bad.exit_code == 2 and "mount point that is not there" in bad.output
