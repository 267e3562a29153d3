"""``python -m scripts.local_api [--host H] [--port P] [--stage S] [--no-autoreload]``: the API server
behind ``make run``, ``chalice local`` fit for keep-alive clients (``local_server.keep_alive``)."""

from local_server.keep_alive import main

if __name__ == "__main__":
    main()
