"""The review page: a local web page where the photographer sees every decision, with its
evidence, and overrules it with one key.

Runs inside the service (`starsort run`), in a thread (`server`), or on its
own (`starsort review` with the service stopped). It reads the database
through read-only connections and hands every change to the process's
deciding thread, which carries it out through the one writer and the move
journal (`library.overrides`). `security` guards the door; `app` holds the
routes and the JSON API; `static/` the page (HTML, CSS, a little JavaScript,
no build step).
"""
