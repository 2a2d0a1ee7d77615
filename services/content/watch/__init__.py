"""The industry watch: RSS and Atom sources polled into a curation queue of suggestions, which
an editor turns into content in one action. Part of the content service (its schema, its API)."""
