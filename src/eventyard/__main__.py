from eventyard.cli import app

app(prog_name="eventyard")
