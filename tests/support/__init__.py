"""What the tests share: the real engines they run on, a live server, SMTP and Socket.IO
counterparts, and builders through the API. Fixtures live in the conftest.py files and
call these; test modules import from here, never from one another."""
