"""What every dialect needs and no dialect owns: one way to report a record's
error, to read and print ISO 8601 timestamps, to read a Basic credential and
to take an identifier's value as text.

The toolkit is not a dialect: it imports none, and each dialect keeps its
own error wording and its own rules of what it accepts, passed in as
parameters where two dialects differ.
"""
