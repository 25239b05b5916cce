"""The annotated-record core that every stage making annotated sentences stands on (annotations,
hf, label, pose): records, rendering a record, sentence builders and pair pooling."""
