"""The demo (``make demo``): the whole product on one machine, end to end, with a readable KPI report.

Starts Kafka, PostgreSQL and the four services as real processes; seeds a group of several
subsidiaries and languages (employees from the HR feed on Kafka and from an identity provider
through SCIM); a third of them enrol as ambassadors; comms write a post that breaks the brand
charter, fix it and publish it with four eyes, plus a subsidiary's own post; distribution
notifies the ambassadors; they share, colleagues and bots click, the networks' connector reports
engagement through signed webhooks, and one event is delivered twice on purpose; the report
then compares what was sent with what reporting counted.

Layout: ``population`` (the group), ``directory`` / ``authoring`` / ``engagement`` (the steps,
by side), ``results`` (reading KPIs back), ``flow`` (the story), ``report`` (the print-out),
``services`` (the processes), ``__main__`` (the command line).
"""
