"""pinhook's local AWS emulator: moto in server mode, made as strict as AWS where pinhook depends
on it, on a clock the tests can control. Run it with `python -m pinhook_emulator` from emulator/
(or with emulator/ on PYTHONPATH); emulator/README.md says what each module does."""
