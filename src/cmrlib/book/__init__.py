"""The book around the library: rendering it (:mod:`~cmrlib.book.build`), a chapter's start and glue, figures,
the teachers' page, datasheets and the page of refusals."""
