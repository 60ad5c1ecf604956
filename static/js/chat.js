// filled by the pages work
