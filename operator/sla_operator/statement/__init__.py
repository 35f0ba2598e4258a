"""`sla-operator statement`: the customer's statement of one agreement and one period, as
JSON, Markdown, HTML or PDF (the HTML rendered by WeasyPrint), from the domain's figures."""
