# One image for the four services; the command picks the service (python -m services.<name>).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORTEVOIX_HTTP_HOST=0.0.0.0
COPY pyproject.toml constraints.txt ./
COPY shared ./shared
COPY services ./services
COPY deploy/__init__.py ./deploy/__init__.py
COPY deploy/local ./deploy/local
COPY deploy/migrate.py ./deploy/migrate.py
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system --uid 10001 portevoix
USER 10001
CMD ["python", "-m", "services.content"]
