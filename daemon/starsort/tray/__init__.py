"""`starsort tray`: the service's state in the system tray. A process of its own.

The headless service never imports this package, and this package never
imports the service: it talks to the running service only through the
review page's API (`/api/status`, `/api/intake`), as any other client would.

    client.py   finds the service and asks it (status every 2 s, pause/resume)
    icons.py    one icon per state, drawn here (no image files to ship)
    app.py      the icon, its tooltip and menu, the polling loop
"""
